"""The mix stage (between select and train): what the trainer sees besides the
rows the method kept -- the mitigations of model collapse.

- **Natural data**: a fraction of the final training set is natural (labeled or
  human-written) examples, sampled without replacement, each marked
  ``source: natural`` with its ``problem_id`` (Shumailov et al. 2024 show that
  keeping original data in the mix slows collapse; the seeds' default is 0.3).
- **Accumulate instead of replace**: train on the union of every iteration's
  kept rows, not only the latest (Gerstgrasser et al. 2024, "Is model collapse
  inevitable?", arXiv 2404.01413: accumulating real and synthetic data avoids
  collapse where replacing it does not).
- **Near-duplicate filter**: MinHash LSH (``datasketch``) over the kept rows'
  n-gram sets. By default duplicates are looked for *within a problem only*:
  correct traces of different arithmetic problems are near-identical character
  strings and are not duplicates; two traces of one problem that say the same
  thing are.
- **Per-problem cap** on kept rows (ReST-EM caps solutions per problem).
- **Temperature schedule** across iterations (``scheduled_temperature``), used
  where a method decides its sampling temperature (``Iteration.temperature``).

Order: this iteration's rows first, then earlier iterations' (newest first), so
filter and cap prefer the freshest traces; natural rows are added last, sized
against the filtered self-generated rows. Rows this iteration kept but the mix
dropped are marked ``kept=False`` with the reason in ``samples.parquet``.
"""

from __future__ import annotations

import random
from collections import defaultdict

from selftaught.config import MixConfig


def scheduled_temperature(cfg: MixConfig | None, k: int, base: float) -> float:
    """The sampling temperature of iteration ``k`` (1-based) for a method whose own setting is ``base``."""
    if cfg is None:
        return base
    if cfg.temperature_schedule:
        return cfg.temperature_schedule[min(max(k, 1), len(cfg.temperature_schedule)) - 1]
    return max(0.0, base + cfg.temperature_step * max(k - 1, 0))


def _shingles(text: str, unit: str, n: int) -> set[str]:
    from selftaught.monitor.diversity import ngrams, tokens

    toks = tokens(text or "", unit)
    return {"\x1f".join(g) for g in ngrams(toks, n)} or {text or ""}


def near_duplicates(rows: list[dict], threshold: float, n: int, unit: str, scope: str = "problem",
                    num_perm: int = 128) -> dict[int, int]:
    """{index of a row: index of the earlier row it near-duplicates}; rows are compared in order.
    MinHash LSH finds candidates (at a threshold of at most 0.9: datasketch cannot band higher
    ones), and the exact n-gram Jaccard of each candidate decides."""
    from datasketch import MinHash, MinHashLSH

    groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        groups[str(r.get("problem_id")) if scope == "problem" else ""].append(i)
    dupes: dict[int, int] = {}
    for members in groups.values():
        if len(members) < 2:
            continue  # nothing to compare: no hashing
        lsh = MinHashLSH(threshold=min(threshold, 0.9), num_perm=num_perm)
        sets: dict[int, set[str]] = {}
        for i in members:
            sh = _shingles(rows[i]["completion"], unit, n)
            m = MinHash(num_perm=num_perm, seed=1)
            m.update_batch([s.encode() for s in sh])
            hit = [j for j in lsh.query(m) if len(sh & sets[j]) / len(sh | sets[j]) >= threshold]
            if hit:
                dupes[i] = min(hit)
            else:
                lsh.insert(i, m)
                sets[i] = sh
    return dupes


def earlier_rows(store, k: int) -> list[dict]:
    """Self-generated training rows of iterations k-1, ..., 1 (newest first; natural rows excluded)."""
    out = []
    for j in range(k - 1, 0, -1):
        if (store.root / f"iter_{j:03d}" / "train.parquet").is_file():
            out += [r for r in store.rows(j, "train") if r.get("source") != "natural"]
    return out


def natural_pool(task, exclude_ppl: int, seed: int) -> list:
    """Natural problems available for mixing: all but the fixed perplexity set (kept unseen)."""
    from selftaught.monitor.perplexity import fixed_set, natural_problems

    problems = natural_problems(task)
    measured = {p.id for p in fixed_set(problems, exclude_ppl, seed)} if exclude_ppl > 0 else set()
    return [p for p in problems if p.id not in measured]


def natural_rows(task, pool: list, n: int, seed: int) -> list[dict]:
    """``n`` natural training rows drawn without replacement (fewer if the pool is smaller)."""
    chosen = random.Random(seed).sample(pool, min(n, len(pool)))
    return [{"prompt": task.prompt(p), "completion": p.rationale, "source": "natural", "sample_id": None,
             "problem_id": p.id} for p in chosen]


def filter_rows(rows: list[dict], cfg: MixConfig, unit: str) -> tuple[list[dict], dict[str, str]]:
    """Drop near-duplicates, then rows past the per-problem cap. Returns (kept, {sample_id: why dropped})."""
    dupes = near_duplicates(rows, cfg.dedup_threshold, cfg.dedup_ngram, unit, cfg.dedup) if cfg.dedup != "none" else {}
    kept, why, per_problem = [], {}, defaultdict(int)
    for i, r in enumerate(rows):
        if i in dupes:
            why[r.get("sample_id")] = f"mix: near-duplicate of {rows[dupes[i]].get('sample_id')}"
        elif cfg.per_problem_cap and per_problem[r.get("problem_id")] >= cfg.per_problem_cap:
            why[r.get("sample_id")] = f"mix: over the cap of {cfg.per_problem_cap} rows per problem"
        else:
            per_problem[r.get("problem_id")] += 1
            kept.append(r)
    return kept, why


def apply(it, store, samples: list[dict], train: list[dict]) -> tuple[list[dict], dict]:
    """The training rows of iteration ``it`` after the mix, and the ``mix/`` metrics.
    Updates ``kept``/``select_reason`` of the samples the mix dropped (in place)."""
    from selftaught.monitor.collapse import unit_for

    cfg: MixConfig = it.cfg.mix
    if train and not all("completion" in r and "prompt" in r for r in train):
        return train, {"mix/skipped": 1}  # not prompt/completion rows (e.g. preference pairs): leave them be
    current = {r.get("sample_id") for r in train}
    earlier = [r for r in earlier_rows(store, it.k) if r.get("sample_id") not in current] if cfg.accumulate else []
    seen, candidates = set(), []
    for r in [*train, *earlier]:  # an accumulated row appears once however many train files hold it
        if r.get("sample_id") is None or r["sample_id"] not in seen:
            seen.add(r.get("sample_id"))
            candidates.append(r)
    own, dropped = filter_rows(candidates, cfg, unit_for(it.task, it.cfg.gate.ngram_unit))
    for s in samples:
        if s.get("kept") and s["sample_id"] in dropped:
            s.update(kept=False, select_reason=dropped[s["sample_id"]])
    f = cfg.natural_fraction
    want = round(f * len(own) / (1 - f)) if own and f > 0 else 0
    pool = natural_pool(it.task, it.cfg.gate.natural_ppl_examples, it.cfg.seed) if want else []
    natural = natural_rows(it.task, pool, want, it.seed("mix")) if want else []
    rows = own + natural
    warn = {}
    if want and not natural:  # a natural_fraction that silently mixes nothing would change what is measured
        warn["mix/warning"] = (f"mix.natural_fraction={f} but task {it.task.name!r} has no natural (labeled) rows "
                               "to mix in: training on self-generated rows only")
        print(f"warning: {warn['mix/warning']}", flush=True)
    return rows, {**warn,
        "mix/self_rows": len(own), "mix/accumulated_rows": sum(r.get("sample_id") not in current for r in own),
        "mix/dropped_duplicates": sum(v.startswith("mix: near") for v in dropped.values()),
        "mix/dropped_cap": sum(v.startswith("mix: over") for v in dropped.values()),
        "mix/natural_rows": len(natural), "mix/natural_frac": len(natural) / len(rows) if rows else 0.0,
    }
