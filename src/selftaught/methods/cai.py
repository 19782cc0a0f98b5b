"""Constitutional AI (Bai et al. 2022, arXiv 2212.08073).

What it does, in two stages:
- **SL-CAI** (iterations 1..``sl_iterations``): the model drafts a response,
  critiques it against a principle sampled from the constitution, and revises it
  (repeatable, a new principle each round); the model is fine-tuned (SFT) on the
  final revisions, with the prompt as it was -- no critique in the example.
- **RL-CAI** (later iterations): the model samples two responses per prompt and,
  as the feedback model, is asked which one better follows a sampled principle
  (``(A)`` or ``(B)``); the AI-labeled pairs train the next model (RLAIF).

Principles come from a user file (``principles: path``; format in the shipped
``templates/constitution.txt``: blocks with ``critique:``, ``revision:`` and
``choose:`` lines); the prompts are ``templates/cai_*.txt``. A principle may also
carry a program ``check:`` (``format``, ``max_words N``, ``forbidden w1, w2``;
``methods/_constitution.py``, ``templates/constitution_checkable.txt``): then each
iteration reports its satisfaction (SL: ``cai/satisfied/draft/<name>`` vs
``cai/satisfied/revision/<name>``; RL: ``cai/satisfied/sample/<name>``) and how
often the AI labels pick the response the program prefers
(``cai/label_program_agreement``).

Where we depart:
- RL stage: DPO directly on the AI-labeled pairs instead of training a
  preference model and running PPO against it.
- The feedback model's label is parsed from its generated text after
  ``The answer is: (``, not read off the log-probabilities of ``A``/``B``; with
  ``swap_check`` each pair is asked in both orders and kept only if the two
  answers agree (position bias is reported as ``cai/label_a_frac``).
- The default constitution adds principles about correct reasoning, since our
  tasks have checkable answers; ``require_correct`` (off: paper) keeps only
  revisions the verifier accepts. Gold agreement of the labels is reported.
- SL training continues from the current model (paper: the pretrained model).
- The feedback model is by default the current policy (``feedback: current``);
  the paper labels with a pretrained LM apart from the policy (``feedback: base``,
  the run's starting model). On SmolLM2 the SL-CAI model stops answering the
  labeling prompt at all (benchmarks/cai_checkable.py), so its recipe uses ``base``.

Run it: ``selftaught run recipes/cai_arithmetic.yaml`` (trainer ``dpo`` for the
RL stage; ``sl_trainer`` configures the SFT of the SL stage);
``selftaught run recipes/cai_checkable_smollm2.yaml`` for the checkable
constitution on SmolLM2 (``benchmarks/cai_checkable.py`` measures it).
"""

from __future__ import annotations

import random
import re
from dataclasses import replace
from typing import Literal

from pydantic import Field

from selftaught import registry, templates
from selftaught.methods import MethodConfig, Needs
# the constitution file and its program checks; FIELDS and load_principles are re-exported as cai's own
from selftaught.methods._constitution import FIELDS, label_agreement, load_principles, satisfaction  # noqa: F401
from selftaught.records import with_columns
from selftaught.trainers import sft

EXTRA = {"principle": None, "principle_id": None, "critique": None, "draft": None, "draft_id": None, "label": None,
         "label_raw": None, "label_raw_swapped": None, "label_checkpoint": None, "pair_id": None}


class Config(MethodConfig):
    type: str = "cai"
    principles: str = Field("constitution", description="constitution file (or the shipped one's name)")
    sl_iterations: int = Field(1, ge=0, description="iterations of the SL stage (critique -> revise -> SFT); RL after")
    revisions: int = Field(1, ge=1, le=9, description="critique -> revise rounds per draft, each with a new principle (paper: up to 4)")
    problems_per_iteration: int | None = Field(64, description="prompts drawn from the pool per iteration (None: all)")
    temperature: float = Field(0.7, description="sampling temperature of drafts and RL responses")
    max_new_tokens: int = Field(160, description="budget of a draft, revision or response")
    critique_max_new_tokens: int = Field(128, description="budget of a critique")
    require_correct: bool = Field(False, description="SL: train only on revisions the verifier accepts (off in the paper)")
    swap_check: bool = Field(True, description="RL: ask each pair in both orders; keep it only if the answers agree")
    feedback: Literal["current", "base"] = Field(
        "current", description="RL: the model that labels the pairs: the current policy, or the run's starting model "
        "(paper: a pretrained LM, apart from the policy)")
    sl_trainer: sft.Config = Field(sft.Config(steps=50, lr=1e-5, batch_size=8), description="the SFT of the SL stage")

    def needs(self, iterations: int) -> Needs:
        """The RL stage trains DPO on AI-labeled pairs; the SL stage its own ``sl_trainer``."""
        if iterations > self.sl_iterations:
            return Needs(trainer=("dpo",), why=f" in its RL stage (iterations > method.sl_iterations={self.sl_iterations})")
        return Needs(trainer=())


def parse_choice(text: str | None) -> str | None:
    """``A`` or ``B`` from the feedback model's continuation of ``The answer is: (``."""
    if not text:
        return None
    lead = re.match(r"\s*\(?\s*([AB])\b", text)
    found = re.findall(r"\(([AB])\)|\b(?:answer|response|option) (?:is )?\(?([AB])\b", text)
    letters = {a or b for a, b in found}
    if lead:  # the continuation starts with a letter: it is the answer unless the other one is named too
        return lead.group(1) if letters <= {lead.group(1)} else None
    return letters.pop() if len(letters) == 1 else None


def _extra(rows: list[dict], **values) -> list[dict]:
    return with_columns(rows, EXTRA, **values)


class CAI:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.principles = load_principles(cfg.principles)
        self.sl_trainer = registry.build("trainer", cfg.sl_trainer)

    def stage(self, it) -> str:
        return "sl" if it.k <= self.cfg.sl_iterations else "rl"

    def _pick(self, it, tag: str, n: int) -> list[int]:
        rng = random.Random(it.seed(tag))
        return [rng.randrange(len(self.principles)) for _ in range(n)]

    def generate(self, it, pool) -> list[dict]:
        problems = it.draw(pool, self.cfg.problems_per_iteration)
        return self._sl(it, problems) if self.stage(it) == "sl" else self._rl(it, problems)

    def _sl(self, it, problems) -> list[dict]:
        c = self.cfg
        crit_t = templates.load("cai_critique", ("prompt", "draft", "critique_request"))
        rev_t = templates.load("cai_revise", ("prompt", "draft", "critique_request", "critique", "revision_request"))
        current = _extra(it.sample(problems, 1, temperature=c.temperature, max_new_tokens=c.max_new_tokens,
                                   phase="draft"))
        rows = list(current)
        for rnd in range(c.revisions):
            ids = self._pick(it, f"principle{rnd}", len(problems))
            picks = [self.principles[i] for i in ids]
            base = [dict(prompt=it.task.prompt(p), draft=r["completion"]) for p, r in zip(problems, current)]
            prompts = [templates.fill(crit_t, critique_request=pr["critique"], **b) for pr, b in zip(picks, base)]
            critiques = it.sample(problems, 1, temperature=0.0, max_new_tokens=c.critique_max_new_tokens,
                                  phase=f"critique{rnd}", prompts=prompts)
            prompts = [templates.fill(rev_t, critique_request=pr["critique"], critique=cr["completion"],
                                      revision_request=pr["revision"], **b)
                       for pr, cr, b in zip(picks, critiques, base)]
            revised = it.sample(problems, 1, temperature=0.0, max_new_tokens=c.max_new_tokens,
                                phase=f"revise{rnd}", prompts=prompts)
            for r, prev, i, cr in zip(revised, current, ids, critiques):
                _extra([r], principle=self.principles[i]["critique"], principle_id=i, critique=cr["completion"],
                       draft=prev["completion"], draft_id=prev["sample_id"])
            rows += revised
            current = revised
        return rows

    def _rl(self, it, problems) -> list[dict]:
        c, choose_t = self.cfg, templates.load("cai_choose", ("prompt", "question", "a", "b"))
        rows = _extra(it.sample(problems, 2, temperature=c.temperature, max_new_tokens=c.max_new_tokens,
                                phase="sample"))
        firsts, seconds = rows[0::2], rows[1::2]
        ids = self._pick(it, "principle", len(problems))
        picks = [self.principles[i] for i in ids]

        def ask(order, phase):
            prompts = [templates.fill(choose_t, prompt=x["prompt"], question=pr["choose"], a=a["completion"],
                                      b=b["completion"]) for x, pr, (a, b) in zip(firsts, picks, order)]
            return [o["completion"] for o in judge.sample(problems, 1, temperature=0.0, max_new_tokens=8,
                                                           phase=phase, prompts=prompts)]

        judge = it if c.feedback == "current" else feedback_model(it)
        raw = ask(list(zip(firsts, seconds)), "label")
        swapped = ask(list(zip(seconds, firsts)), "label_swapped") if c.swap_check else [None] * len(problems)
        for a, b, i, x, y in zip(firsts, seconds, ids, raw, swapped):
            label = choice_label(parse_choice(x), parse_choice(y) if c.swap_check else "skip")
            for r in (a, b):
                r.update(principle=self.principles[i]["choose"], principle_id=i, label=label, label_raw=x,
                         label_raw_swapped=y, label_checkpoint=judge.model, pair_id=a["sample_id"])
        return rows

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        if rows and rows[0]["phase"] == "draft":  # SL stage: train on the final revisions
            last = max((r["phase"] for r in rows if r["phase"].startswith("revise")), default=None)
            train = []
            for r in rows:
                keep = r["phase"] == last and (r["correct"] or not self.cfg.require_correct)
                why = "final revision" if keep else ("revision rejected by the verifier" if r["phase"] == last
                                                     else "draft or intermediate revision")
                r.update(kept=keep, select_reason=why)
                if keep:
                    # the plain task prompt: no critique or revision request in the training example
                    train.append({"prompt": it.task.prompt(it.problem_of(r)), "completion": r["completion"], "source": "cai_sl",
                                  "sample_id": r["sample_id"], "problem_id": r["problem_id"]})
            return rows, train, sl_metrics(rows, self.principles)
        rows, train = rl_pairs(rows)
        return rows, train, rl_metrics(rows, train, self.principles)

    def train(self, it, rows: list[dict]) -> dict:
        """RL stage: DPO from and against the current model; SL stage: ``sl_trainer`` on the revisions."""
        if "chosen" in rows[0]:
            return it.train(rows, init=it.model, ref_model=it.model, desc="cai rl dpo")
        m = it.train(rows, init=it.model, steps=self.cfg.sl_trainer.steps, trainer=self.sl_trainer, desc="cai sl sft")
        return {**m, "train/init": it.model}


def feedback_model(it):
    """The iteration as seen by a feedback model that is the run's starting model (``feedback: base``)."""
    from selftaught.models.loading import checkpoint_hash

    return replace(it, model=it.base_model, model_hash=checkpoint_hash(it.base_model))


def sl_metrics(rows: list[dict], principles: list[dict] = ()) -> dict:
    """Correctness of drafts and final revisions, and how many of each satisfy the
    constitution's program checks (``cai/satisfied/draft/*`` -> ``cai/satisfied/revision/*``)."""
    drafts = [r for r in rows if r["phase"] == "draft"]
    last = [r for r in rows if r["kept"] or r["select_reason"].startswith("revision rejected")]
    return {"cai/stage_sl": 1, "cai/draft_correct_frac": sum(r["correct"] for r in drafts) / max(1, len(drafts)),
            "cai/revision_correct_frac": sum(r["correct"] for r in last) / max(1, len(last)),
            "cai/revision_changed_frac": sum(r["completion"] != r["draft"] for r in last) / max(1, len(last)),
            **satisfaction([r["completion"] for r in drafts], principles, "cai/satisfied/draft"),
            **satisfaction([r["completion"] for r in last], principles, "cai/satisfied/revision")}


def choice_label(first_order: str | None, swapped_order: str | None) -> str:
    """'first'/'second' (which sample is preferred), or why there is no label.
    ``swapped_order`` is the answer with the two responses' places exchanged."""
    if first_order is None or swapped_order is None:
        return "unparsed"
    if swapped_order == "skip":
        return "first" if first_order == "A" else "second"
    if (first_order, swapped_order) in (("A", "B"), ("B", "A")):
        return "first" if first_order == "A" else "second"
    return "inconsistent"


def rl_pairs(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """Preferred vs other response of each labeled pair; identical responses are skipped."""
    train = []
    for a, b in zip(rows[0::2], rows[1::2]):
        good, bad = (a, b) if a["label"] == "first" else (b, a)
        if a["label"] not in ("first", "second"):
            why = f"no label ({a['label']})"
        elif a["completion"] == b["completion"]:
            why = "the two responses are identical"
        else:
            why = ""
            train.append({"prompt": a["prompt"], "chosen": good["completion"], "rejected": bad["completion"],
                          "source": "cai_rl", "sample_id": good["sample_id"], "rejected_id": bad["sample_id"],
                          "problem_id": a["problem_id"]})
        for r in (a, b):
            r.update(kept=not why, select_reason=why or ("preferred" if r is good else "not preferred"))
    return rows, train


def rl_metrics(rows: list[dict], train: list[dict], principles: list[dict] = ()) -> dict:
    firsts = rows[0::2]
    n = max(1, len(firsts))
    raw = [parse_choice(r["label_raw"]) for r in firsts]
    by_id = {r["sample_id"]: r for r in rows}
    decisive = [t for t in train if by_id[t["sample_id"]]["correct"] != by_id[t["rejected_id"]]["correct"]]
    out = {"cai/stage_rl": 1, "select/pairs": len(train),
           "cai/label_parsed_frac": sum(x is not None for x in raw) / n,
           "cai/label_consistent_frac": sum(r["label"] in ("first", "second") for r in firsts) / n,
           "cai/label_a_frac": sum(x == "A" for x in raw) / max(1, sum(x is not None for x in raw))}
    if decisive:
        out["cai/label_gold_agreement"] = sum(by_id[t["sample_id"]]["correct"] for t in decisive) / len(decisive)
    return {**out, **program_metrics(rows, train, principles, raw)}


def program_metrics(rows: list[dict], train: list[dict], principles: list[dict], raw: list[str | None]) -> dict:
    """RL stage against the constitution's program checks: the responses' satisfaction;
    the labels' agreement with the program's preference under the principle each pair
    was asked about -- the kept (order-consistent) labels and the first-order answers
    before the swap check; and the satisfaction of the chosen vs the rejected responses."""
    if not any("check" in p for p in principles):
        return {}
    ask = [principles[int(a["principle_id"])] for a in rows[0::2]]
    pairs = list(zip(rows[0::2], rows[1::2], ask))
    kept, n_kept = label_agreement([(a["completion"], b["completion"], pr, a["label"]) for a, b, pr in pairs])
    first, n_first = label_agreement([(a["completion"], b["completion"], pr, {"A": "first", "B": "second"}.get(x))
                                      for (a, b, pr), x in zip(pairs, raw)])
    by_id = {r["sample_id"]: r for r in rows}
    out = {**satisfaction([r["completion"] for r in rows], principles, "cai/satisfied/sample"),
           "cai/label_program_n": n_kept, "cai/label_program_first_order_n": n_first,
           **satisfaction([t["chosen"] for t in train], principles, "cai/satisfied/chosen"),
           **satisfaction([by_id[t["rejected_id"]]["completion"] for t in train], principles, "cai/satisfied/rejected")}
    if kept is not None:
        out["cai/label_program_agreement"] = kept
    if first is not None:
        out["cai/label_program_agreement_first_order"] = first
    return out


def build(cfg: Config) -> CAI:
    return CAI(cfg)
