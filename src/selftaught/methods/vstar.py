"""V-STaR: Training Verifiers for Self-Taught Reasoners (Hosseini et al. 2024,
arXiv 2402.06457).

What it does: STaR-style self-training that also keeps the model's *wrong*
solutions. Each iteration samples k solutions per problem; the correct ones
train the generator (SFT) and every (correct, incorrect) pair of solutions to
the same problem, accumulated over all iterations so far, trains a verifier
with DPO. The verifier's score of a solution is the DPO implicit reward
``beta * (log pi_v(y|x) - log pi_ref(y|x))``; at test time it ranks k
candidates and the best one is the answer (best-of-k).

Here, for self-play on an unlabeled pool: solutions are sampled on the task's
labeled seed problems (gold known: they make the verifier's pairs and the
generator's correct seed examples) and on the unlabeled train pool, where the
verifier, not gold, decides what the generator trains on: per problem the
top-scored sample, kept if its score reaches ``threshold``. Gold of the pool is
recorded, never read by selection: ``vstar/precision`` and ``vstar/recall``
are "score >= threshold" against the real verifier on every pool sample.

Where we depart:
- The paper's generator and verifier data both come from labeled training
  problems; here only the seed set is labeled and the pool is filtered by the
  verifier (the issue's self-play setting). ``filter: none`` keeps every pool
  sample (the no-filter baseline).
- Pairs are capped per problem (``max_pairs_per_problem``) so DPO stays small.
- The verifier is trained from the base model with the base model as its DPO
  reference, every iteration, on all pairs so far (paper: from the SFT model).
- The verifier is written to ``iter_k/verifier`` and trained in the select
  stage (it needs the seed samples' gold verdicts); ``rerank`` scores held-out
  candidates with it (``benchmarks/vstar.py`` reports best-of-k by verifier).

Run it: ``selftaught run recipes/vstar_arithmetic.yaml``
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import Field

from selftaught import registry
from selftaught.iteration import problem_json
from selftaught.methods import Needs
from selftaught.methods import _filter as F
from selftaught.store import read_parquet
from selftaught.trainers import dpo

SEED, POOL = "seed", "sample"  # row phases; pool rows are "sample" as in the family (verify/correct_frac)


class Config(F.SampleConfig):
    type: str = "vstar"
    seed_problems_per_iteration: int | None = Field(64, description="labeled seed problems sampled per iteration "
                                                    "(None: all)")
    filter: Literal["verifier", "none"] = Field("verifier", description="pool: the verifier's top sample per "
                                                "problem, or keep every sample")
    threshold: float = Field(0.0, description="keep a pool problem's top sample if its verifier score is >= this")
    max_pairs_per_problem: int = Field(4, ge=1, description="(correct, incorrect) pairs per seed problem and iteration")
    score_batch_size: int = Field(64, ge=1, description="sequences per forward pass when scoring")
    verifier_trainer: dpo.Config = Field(dpo.Config(steps=60, lr=1e-4, batch_size=16, beta=0.1),
                                         description="the DPO that trains the verifier")

    def needs(self, iterations: int) -> Needs:
        return Needs(trainer=("sft",), why=" (SFT of the generator; the verifier has its own DPO)")


def verifier_dir(it, k: int | None = None) -> Path:
    return it.iter_dir(k) / "verifier"


def sequence_logps(model_dir: str, task, rows: list[dict], batch_size: int = 64) -> list[float]:
    """Summed log-probability of each row's completion (+ end of sequence) given its
    prompt: the tokens, labels and position ids the perplexity monitor uses."""
    import torch

    from selftaught.models.loading import load_pretrained
    from selftaught.monitor.perplexity import _encode, padded_batch

    model, tok = load_pretrained(model_dir)
    encoded = [_encode(tok, task.position_tracker, r["prompt"], r["completion"] or "") for r in rows]
    out = []
    with torch.inference_mode():
        for i in range(0, len(encoded), batch_size):
            ids, labels, pos, attn = padded_batch(encoded[i : i + batch_size], tok.pad_token_id, model.device)
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=attn, position_ids=pos).logits.float(), -1)
            target = labels[:, 1:]
            tok_lp = logp[:, :-1].gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            out += (tok_lp * (target != -100)).sum(-1).tolist()
    return out


def verifier_scores(verifier: str, ref: str, task, rows: list[dict], beta: float, batch_size: int = 64) -> list[float]:
    """The DPO implicit reward beta * (log pi_v(y|x) - log pi_ref(y|x)) of each row."""
    if not rows:
        return []
    v = sequence_logps(verifier, task, rows, batch_size)
    r = sequence_logps(ref, task, rows, batch_size)
    return [beta * (a - b) for a, b in zip(v, r)]


def pairs(rows: list[dict], cap: int, seed: int) -> list[dict]:
    """DPO rows: (correct, incorrect) completions of the same seed problem, at most
    ``cap`` per problem and iteration (a seeded choice); identical texts skipped."""
    out = []
    for pid, group in sorted(F.by_problem(rows).items()):
        good = [r for r in group if r["correct"]]
        bad = [r for r in group if not r["correct"]]
        combos = [(g, b) for g in good for b in bad if g["completion"] != b["completion"]]
        rng = random.Random(f"{seed}/{pid}/{group[0]['iteration']}")
        for g, b in rng.sample(combos, min(cap, len(combos))):
            out.append({"prompt": g["prompt"], "chosen": g["completion"], "rejected": b["completion"],
                        "source": "vstar_verifier", "sample_id": g["sample_id"], "rejected_id": b["sample_id"],
                        "problem_id": pid})
    return out


def quality(pool: list[dict], threshold: float) -> dict:
    """"score >= threshold" against gold on every pool sample (never read by selection)."""
    yes = [r for r in pool if r["vstar_score"] >= threshold]
    ok = [r for r in pool if r["correct"]]
    both = [r for r in yes if r["correct"]]
    kept = [r for r in pool if r["kept"]]
    return {"vstar/precision": F.frac(len(both), len(yes)), "vstar/recall": F.frac(len(both), len(ok)),
            "vstar/pool_correct_frac": F.frac(len(ok), len(pool)), "vstar/kept_pool": len(kept),
            "vstar/kept_pool_correct_frac": F.frac(sum(r["correct"] for r in kept), len(kept))}


class VStar:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.verifier_trainer = registry.build("trainer", cfg.verifier_trainer)

    def generate(self, it, pool) -> list[dict]:
        c = self.cfg
        labeled = it.task.seed_set()
        if not labeled:
            raise ValueError(f"vstar: task {it.task.name!r} has no labeled seed problems to train the verifier on")
        seeds = it.draw(labeled, c.seed_problems_per_iteration)
        seed_rows = F.sample(it, seeds, c, phase=SEED)
        by_id = {p.id: problem_json(p) for p in seeds}
        for r in seed_rows:  # seed problems are in no split the loop knows (as SPIN's)
            r["problem_json"] = by_id[r["problem_id"]]
        pool_rows = F.sample(it, it.draw(pool, c.problems_per_iteration), c, phase=POOL)
        for r in pool_rows:
            r["problem_json"] = None
        return seed_rows + pool_rows

    def _earlier_pairs(self, it) -> list[dict]:
        """The pairs of every earlier iteration (the paper accumulates them)."""
        out = []
        for k in range(1, it.k):
            f = it.iter_dir(k) / "samples.parquet"
            if f.is_file():
                out += pairs([r for r in read_parquet(f) if r["phase"] == SEED], self.cfg.max_pairs_per_problem,
                             it.cfg.seed)
        return out

    def _train_verifier(self, it, seed_rows: list[dict]) -> dict:
        new = pairs(seed_rows, self.cfg.max_pairs_per_problem, it.cfg.seed)
        train = new + self._earlier_pairs(it)
        out = verifier_dir(it)
        metrics = {"vstar/pairs": len(train), "vstar/pairs_new": len(new)}
        if (out / "config.json").is_file():  # a resumed select stage: the verifier is already there
            return metrics
        if not train:
            raise ValueError("vstar: no (correct, incorrect) pair on the seed problems yet; sample more per problem "
                             "(method.samples_per_problem) or more seed problems")
        m = it.train(train, init=it.base_model, ref_model=it.base_model, trainer=self.verifier_trainer,
                     stage="verifier", out_dir=str(out), desc="vstar verifier dpo")
        return {**metrics, **{f"vstar/verifier_{k.split('/', 1)[1]}": v for k, v in m.items()
                              if k in ("train/loss", "train/reward_accuracy", "train/reward_margin", "train/seconds")}}

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        c = self.cfg
        seed_rows = [r for r in rows if r["phase"] == SEED]
        pool = [r for r in rows if r["phase"] == POOL]
        metrics = self._train_verifier(it, seed_rows)
        beta = c.verifier_trainer.beta
        for r, s in zip(pool, verifier_scores(str(verifier_dir(it)), it.base_model, it.task, pool, beta,
                                              c.score_batch_size)):
            r["vstar_score"] = s
        for r in seed_rows:
            r["vstar_score"] = None
            F.mark(r, r["correct"], "correct seed solution" if r["correct"] else f"rejected: {r['verify_reason']}")
        if c.filter == "none":
            for r in pool:
                F.mark(r, True, "no filter")
        else:
            F.top_per_problem(pool, lambda r: r["vstar_score"], c.threshold)
        metrics.update(quality(pool, c.threshold))
        return rows, self._train_rows(it, rows), metrics

    def _train_rows(self, it, rows: list[dict]) -> list[dict]:
        """The plain task prompt + the completion (seed rows' problems from their problem_json)."""
        return [{"prompt": it.task.prompt(it.problem_of(r), hint=False), "completion": r["completion"],
                 "source": r["phase"], "sample_id": r["sample_id"], "problem_id": r["problem_id"]}
                for r in rows if r["kept"]]

    def train(self, it, rows: list[dict]) -> dict:
        return F.train(it, rows, self.cfg)


def rerank(verifier: str, ref: str, task, rows: list[dict], beta: float = 0.1) -> dict:
    """Best-of-k by the verifier over held-out candidate rows (``problem_id``, ``prompt``,
    ``completion``, ``correct``): accuracy of each problem's top-scored candidate,
    next to the first candidate's (pass@1 sampled) and any-correct (pass@k)."""
    scores = verifier_scores(verifier, ref, task, rows, beta)
    groups: dict[str, list[tuple[float, dict]]] = {}
    for s, r in zip(scores, rows):
        groups.setdefault(r["problem_id"], []).append((s, r))
    best = [max(g, key=lambda sr: sr[0])[1] for g in groups.values()]
    n = len(groups)
    return {"best_of_k": F.frac(sum(bool(r["correct"]) for r in best), n),
            "first": F.frac(sum(bool(g[0][1]["correct"]) for g in groups.values()), n),
            "pass_at_k": F.frac(sum(any(bool(r["correct"]) for _, r in g) for g in groups.values()), n),
            "k": len(rows) // max(1, n), "n": n}


def build(cfg: Config) -> VStar:
    return VStar(cfg)
