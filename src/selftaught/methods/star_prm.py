"""STaR with process supervision: Math-Shepherd step labels, a PRM, PRM-filtered selection.

Papers: Math-Shepherd (Wang et al. 2023, arXiv 2312.08935) -- label each step by
rolling out from its prefix; Lightman et al. 2023 (arXiv 2305.20050) -- a process
reward model scores every step, a solution scores its steps' minimum or product;
STaR (Zelikman et al. 2022, arXiv 2203.14465) is the loop it filters.

What it does: each iteration samples as STaR does (rationalization included),
then labels the steps of ``label_traces`` of those traces by rollout -- from the
prefix ending with each step, ``rollouts_per_step`` unhinted continuations from
the same model; hard label: any reaches the gold answer, soft: the fraction
(``verifiers/prm.py``). The rollouts are rows of ``samples.parquet`` (phase
``step_rollout``, never trained on) and the labels one record per step in
``iter_k/steps.parquet``. A PRM (the policy's weights with a one-logit head, read
at each step's end) is trained on them into ``iter_k/prm`` and scores every
trace; STaR then keeps, per problem, the first trace that is correct *and* whose
aggregated step score (``aggregate``: min or product) reaches ``threshold``, and
then correct traces the PRM flagged, up to ``flagged_share`` of the kept ones, to
the groups (digit counts) with the fewest kept traces (``admit_flagged``). Why: a
rollout label says whether *this* policy can finish the prefix, so on sums it
cannot yet do every step is labeled wrong, right or not, and a filter that drops
every flagged trace drops the frontier STaR learns length from (in
``benchmarks/prm.py`` it stalled at 4 digits, 38% -> 33%; with 8% admitted: 69%,
but 9-17% of kept traces wrong-working, as the PRM also passes some).
Where the task checks steps exactly (arithmetic), the PRM's precision/recall at
flagging wrong steps is reported on the traces it was not trained on
(``prm/step_*``), and the labels' own (``prm/label_*``).

Where we depart: the rollouts come from the policy itself (Math-Shepherd uses a
separate completer); ``label_correct`` draws that share of the labeled traces from
the correct ones (the recipe: 0.75; None: a plain random sample, as the paper).
Why: the filter decides among correct traces only, while three quarters of a
random sample are wrong traces whose right early steps, at lengths the policy
cannot finish, are labeled wrong; the PRM trained on them flagged up to 67% of the
correct traces with right working, and STaR stalled (benchmarks/prm.py, README).
``baseline: group`` thresholds a trace's score divided by its group's sampled
success rate (the value its problems start from), so that the frontier's low values
are not read as wrong steps; measured: level with STaR at iteration 1, behind the
plain PRM after, more wrong working (README), so off by default.
``labels: checker`` labels the same traces' steps with the task's exact step check
instead of rollouts (no rollouts are sampled): Lightman et al.'s setting, where a
labeler (people, for PRM800K) labels the steps of a budget of traces and the PRM
generalizes to the rest; it needs a task with ``step_checks`` and shows what the
PRM and the filter do when the labels can see every error (README).
The PRM is retrained each iteration on that iteration's labels only
(``label_history: true`` trains it on every iteration's labels so far; ``retrain:
false`` keeps iteration 1's; ``prm: <dir>`` uses one trained elsewhere and samples
no rollouts); the PRM is the tiny policy with a
head, not a 7B model. ``require_correct: false`` drops the gold check and keeps
the top PRM-scored sample per problem (best-of-N against a learned proxy, which
the over-optimization watch of Gao et al. 2022, arXiv 2210.10760,
``monitor/overopt.py``, then watches).

Run it: ``selftaught run recipes/star_prm_arithmetic.yaml`` (or
``selftaught run method.type=star_prm`` on the default demo).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from selftaught.methods import Needs
from selftaught.methods import _filter as F
from selftaught.methods import star
from selftaught.store import write_parquet
from selftaught.verifiers import prm


class Config(star.Config):
    type: str = "star_prm"
    label_traces: int = Field(256, ge=1, description="traces per iteration whose steps are labeled "
                            "(by rollout, or by the checker)")
    label_correct: float | None = Field(None, ge=0, le=1, description="share of the labeled traces drawn from the "
                                        "correct ones, the traces the filter decides on (None: a plain random sample)")
    labels: Literal["rollout", "checker"] = Field("rollout", description="who labels the steps: rollouts from each "
                                                  "step prefix (Math-Shepherd), or the task's exact step check on "
                                                  "the labeled traces (a labeler, as Lightman et al.'s people)")
    label_spread: Literal["random", "group"] = Field("random", description="group: draw the labeled traces evenly "
                                                    "over the groups (digit counts), so the longest are labeled as "
                                                    "often as the short ones (random: in proportion)")
    rollouts_per_step: int = Field(4, ge=1, description="continuations sampled from each step prefix (Math-Shepherd's N)")
    label: Literal["hard", "soft"] = Field("hard", description="the PRM's target: any rollout reached the answer, or the fraction")
    aggregate: Literal["min", "prod"] = Field("min", description="a trace's score from its step scores")
    threshold: float = Field(0.5, ge=0, le=1, description="keep a trace whose aggregated step score reaches this")
    baseline: Literal["none", "group"] = Field("none", description="group: threshold a trace's score divided by "
                                               "its group's sampled success rate, the value at its problems' start "
                                               "(capped at 1; none: the score itself, as the papers)")
    flagged_share: float = Field(0.08, ge=0, lt=1, description="up to this share of kept traces may be correct ones "
                                 "the PRM flags, given to the groups with the fewest kept ones (0: drop them all)")
    require_correct: bool = Field(True, description="false: no gold check, keep the top PRM-scored sample per problem")
    prm: str | None = Field(None, description="a PRM directory trained elsewhere (no rollouts, no PRM training)")
    retrain: bool = Field(True, description="label and retrain the PRM every iteration (false: iteration 1's is kept)")
    label_history: bool = Field(False, description="train each iteration's PRM on the step labels of this and every "
                                "earlier iteration (iter_j/steps.parquet), not this one's alone")
    prm_steps: int = Field(150, ge=1, description="PRM training steps")
    prm_lr: float = Field(1e-3, description="PRM learning rate (AdamW)")
    prm_batch_size: int = Field(32, ge=1, description="traces per PRM training step")

    @model_validator(mode="after")
    def _gold_free(self):
        if not self.require_correct and self.rationalize:
            raise ValueError("require_correct: false selects without gold answers; set rationalize: false too "
                             "(rationalization hints the gold answer)")
        if not self.require_correct and self.baseline == "group":
            raise ValueError("baseline: group measures each group's value with the gold check; "
                             "with require_correct: false set baseline: none")
        return self

    def needs(self, iterations: int) -> Needs:
        if self.labels == "checker":
            return Needs(task=("step_checks",), why=" (labels: checker labels steps with the task's exact step check)")
        return Needs()

    def proxy(self, it):
        """The learned scorer that selects the training data: this iteration's PRM."""
        d = prm_dir(self, it)
        if d is None or not (Path(d) / "config.json").is_file():
            return None
        return lambda rows: prm.rewards(d, it.task, rows, self.aggregate)


def labels_now(cfg: Config, k: int) -> bool:
    return cfg.prm is None and (cfg.retrain or k == 1)


def prm_dir(cfg: Config, it) -> str | None:
    """The PRM that iteration ``it.k`` selects with."""
    if cfg.prm:
        return cfg.prm
    if it.k < 1:
        return None
    return str(it.iter_dir(it.k if cfg.retrain else 1) / "prm")


class StarPRM:
    def __init__(self, cfg: Config) -> None:
        self.cfg, self.star = cfg, star.Star(cfg)

    def _to_label(self, it, traces: list[dict]) -> list[dict]:
        """A seeded choice of ``label_traces`` traces, in sampling order (same in generate and
        select: both see the traces verified). With ``label_correct``, that share of them
        from the correct traces (as many as there are), the rest from the others."""
        n, rng = min(self.cfg.label_traces, len(traces)), random.Random(it.seed("prm_label"))
        draw = rng.sample if self.cfg.label_spread == "random" else \
            lambda idx, m: spread(rng, idx, m, lambda i: traces[i].get("group"))
        if self.cfg.label_correct is None:
            chosen = draw(range(len(traces)), n)
        else:
            right = [i for i, t in enumerate(traces) if t["correct"]]
            other = [i for i, t in enumerate(traces) if not t["correct"]]
            k = min(len(right), max(round(self.cfg.label_correct * n), n - len(other)))
            chosen = draw(right, k) + draw(other, n - k)
        return [traces[i] for i in sorted(chosen)]

    def generate(self, it, pool) -> list[dict]:
        rows = self.star.generate(it, pool)
        if not labels_now(self.cfg, it.k) or self.cfg.labels == "checker":
            return rows
        c = self.cfg
        traces = self._to_label(it, it.score(rows))
        return rows + prm.rollouts(it, traces, c.rollouts_per_step, temperature=it.temperature(c.temperature),
                                   max_new_tokens=c.max_new_tokens)

    def select(self, it, rows: list[dict]) -> tuple[list[dict], list[dict], dict]:
        c = self.cfg
        traces = [r for r in rows if r["phase"] != prm.ROLLOUT]
        for r in rows:
            if r["phase"] == prm.ROLLOUT:
                F.mark(r, False, "step-label rollout (labels a prefix; never trained on)")
        metrics, labeled = {}, set()
        if labels_now(c, it.k):
            chosen = self._to_label(it, traces)
            labeled = {t["sample_id"] for t in chosen}
            if c.labels == "checker":
                labels = prm.checker_labels(it.task, it.problem_of, chosen)
            else:
                labels = prm.step_labels(it.task, it.problem_of, chosen, [r for r in rows if r["phase"] == prm.ROLLOUT])
            write_parquet(Path(it.out_dir).parent / "steps.parquet", labels)
            history = earlier_labels(it) if c.label_history else []
            metrics.update(prm.train(it.model, history + labels, prm_dir(c, it), it.task, label=c.label,
                                     steps=c.prm_steps, lr=c.prm_lr, batch_size=c.prm_batch_size,
                                     seed=it.seed("prm_train")))
            metrics["prm/train_earlier_labels"] = len(history)
            metrics.update(prm.label_quality(labels, c.label))
        base = group_values(traces) if c.baseline == "group" else {}
        for r, x in zip(traces, prm.rewards(prm_dir(c, it), it.task, traces, c.aggregate)):
            r["prm_score"] = x
            if base:
                r["prm_base"] = base[r.get("group")]
                r["prm_keep"] = min(1.0, x / r["prm_base"])
            else:
                r["prm_keep"] = x
        admitted = self._keep(traces)
        unseen = [t for t in traces if t["sample_id"] not in labeled]
        exact = [it.task.step_checks(it.problem_of(t), t["completion"]) for t in unseen]
        metrics.update(prm.step_quality([t["prm_steps"] for t in unseen], exact, c.threshold))
        kept = [t for t in traces if t["kept"]]
        metrics.update({"prm/mean_score": F.frac(sum(t["prm_score"] for t in traces), len(traces)),
                        "prm/kept_mean_score": F.frac(sum(t["prm_score"] for t in kept), len(kept)),
                        "select/prm_rejected_correct": sum(t["correct"] and t["prm_keep"] < c.threshold
                                                           for t in traces),
                        "select/flagged_admitted": admitted})
        metrics.update(prm.trace_quality(unseen, c.threshold, score="prm_keep"))
        return rows, F.train_rows(it, rows), metrics

    def _keep(self, traces: list[dict]) -> int:
        c = self.cfg
        if not c.require_correct:  # best-of-N against the PRM alone
            F.top_per_problem(traces, lambda r: r["prm_keep"], c.threshold)
            return 0

        def good(r):
            return self.star._good(r) and r["prm_keep"] >= c.threshold

        def why_not(r):
            if not r["correct"]:
                return r["verify_reason"]
            if r["prm_keep"] >= c.threshold:
                return "wrong working"
            of = f" (/ group value {r['prm_base']:.3f})" if "prm_base" in r else ""
            return f"PRM score {r['prm_score']:.3f}{of} below {c.threshold}"
        star.keep_first(traces, good, why_not)
        return admit_flagged(traces, c.flagged_share, self.star._good)

    def train(self, it, rows: list[dict]) -> dict:
        """As STaR: the base model (``init``) on this iteration's rows, steps growing."""
        return F.train(it, rows, self.cfg)


def spread(rng: random.Random, idx, m: int, group_of) -> list:
    """``m`` of ``idx`` drawn evenly over their groups (``label_spread: group``): each
    group's members shuffled, then one from every group in turn (groups in a seeded
    order) while any is left. Why: correct traces are mostly short, so a plain sample
    labels the frontier, where the filter decides most, least of all."""
    groups: dict = {}
    for i in idx:
        groups.setdefault(str(group_of(i)), []).append(i)
    queues = [rng.sample(groups[g], len(groups[g])) for g in rng.sample(sorted(groups), len(groups))]
    out: list = []
    while len(out) < m and any(queues):
        for q in queues:
            if q and len(out) < m:
                out.append(q.pop())
    return out


def earlier_labels(it) -> list[dict]:
    """The step labels iterations 1..k-1 wrote (``label_history``), oldest first. Each
    iteration's file is complete before its select stage is marked done, so a resumed
    run reads the same labels; a missing file (a run started with ``retrain: false``,
    or labels never drawn) is skipped, a corrupt one is an error naming it."""
    from selftaught.store import read_parquet

    out = []
    for j in range(1, it.k):
        path = it.iter_dir(j) / "steps.parquet"
        if path.is_file():
            out += read_parquet(path)
    return out


def group_values(traces: list[dict]) -> dict:
    """Each group's (the task's level: digit count) value at its problems' start under
    this policy: the share of its unhinted samples that are correct, Laplace-smoothed,
    (correct + 1) / (samples + 2), so that a group with no correct sample still has
    one above 0 (``baseline: group``). Why: a rollout label is the value of a prefix
    (can *this* policy still finish?), so where the policy finishes 10% of the sums
    every step of a right trace is worth about 0.1, and an absolute threshold drops
    the frontier STaR learns length from; a step that falls below half of where its
    problem started is what a wrong step does (benchmarks/prm.py, README)."""
    n: dict = {}
    for r in traces:
        if r["phase"] == "sample":
            c = n.setdefault(r.get("group"), [0, 0])
            c[0] += bool(r["correct"])
            c[1] += 1
    out = {g: (c + 1) / (m + 2) for g, (c, m) in n.items()}
    for r in traces:  # a group with rationalized traces only: no sample told its value
        out.setdefault(r.get("group"), 0.5)
    return out


def admit_flagged(traces: list[dict], share: float, correct) -> int:
    """Keep some correct traces the PRM flagged, so that they are at most ``share`` of
    the kept ones: one per problem that has no kept trace (STaR's order: sampled before
    rationalized, then the higher PRM score), each time in the group (the task's level:
    digit count) whose problems have the fewest kept traces. Why: at the lengths the
    policy is learning, a rollout label says whether *this* policy can finish the
    prefix, so the PRM flags nearly every step there, right or wrong, and dropping all
    flagged traces drops the frontier (benchmarks/prm.py). Returns how many were admitted."""
    kept = {r["problem_id"] for r in traces if r.get("kept")}
    room = int(share * len(kept) / (1 - share) + 1e-9)  # flagged <= share * (clean + flagged)
    order = {"sample": 0, "rationalize": 1}
    best: dict[str, dict] = {}
    for r in sorted((r for r in traces if r["phase"] in order and r["problem_id"] not in kept and correct(r)),
                    key=lambda r: (order[r["phase"]], -r["prm_keep"])):
        best.setdefault(r["problem_id"], r)
    problems: dict[str, set] = {}
    for r in traces:
        problems.setdefault(str(r.get("group")), set()).add(r["problem_id"])
    have = {g: len(ps & kept) for g, ps in problems.items()}
    waiting: dict[str, list[dict]] = {}
    for r in best.values():
        waiting.setdefault(str(r.get("group")), []).append(r)
    admitted = 0
    while admitted < room and any(waiting.values()):
        g = min((g for g in waiting if waiting[g]), key=lambda g: (have[g] / len(problems[g]), g))
        r = waiting[g].pop(0)
        have[g] += 1
        admitted += 1
        F.mark(r, True, f"flagged (PRM score {r['prm_keep']:.3f}) but admitted: group {g} has the fewest "
                        f"kept traces (flagged_share)")
    return admitted


def build(cfg: Config) -> StarPRM:
    return StarPRM(cfg)
