"""The self-improvement loop, top to bottom:

    generate -> verify -> select -> mix -> train -> evaluate -> monitor -> gate   (iterations 1..N)

Iteration 0 only evaluates the starting model, so the first line of metrics.jsonl
is the baseline. ``mix`` adds natural data and filters what the method kept
(``mix.py``, written with select); ``monitor`` measures collapse (diversity of
samples and held-out outputs, perplexity on natural data) and the gate turns its
history into warnings and a stop/rollback decision (``monitor/``).

Every stage reads its inputs from the run directory and writes its outputs
there, then a ``<stage>.done`` marker; a finished stage is never re-run, an
interrupted one is re-run from its inputs (``store.py``). So running the same
command again after a crash -- or kill -9 -- resumes where it stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

from selftaught import hardware, registry
from selftaught.config import RunConfig, same_config, to_yaml
from selftaught.evaluate import evaluate
from selftaught.backends import Backend
from selftaught.iteration import Iteration
from selftaught.methods import Method
from selftaught.methods import check_task
from selftaught.mix import apply as mix
from selftaught.monitor import detector
from selftaught.progress import run_progress
from selftaught.models.loading import checkpoint_hash, hub_revision, resolve
from selftaught.report import after_each_iteration
from selftaught.store import RunStore
from selftaught.trainers import Trainer

STAGES = ("generate", "verify", "select", "train", "evaluate", "monitor")
MAX_EPOCHS, SMALL_SET = 5, 100  # > 5 passes over < 100 training rows: a warning in the train metrics


def _stage(store: RunStore, k: int, name: str, fn) -> dict:
    """Run ``fn`` unless the stage is done; record its metrics and wall time in the marker."""
    marker = store.done(k, name)
    if marker is not None:
        return marker
    t0 = time.perf_counter()
    metrics = {**(fn() or {}), **hardware.metrics(name)}  # where the stage ran: hw/<stage>/device, dtype
    metrics[f"time/{name}_s"] = round(time.perf_counter() - t0, 2)
    store.mark_done(k, name, metrics)
    return metrics


def _model_after(store: RunStore, k: int, base: str) -> str:
    """The checkpoint iteration k ended with (iterations that trained nothing keep the previous one)."""
    for j in range(k, 0, -1):
        if (store.checkpoint(j) / "config.json").is_file():
            return str(store.checkpoint(j))
    return base


def run(cfg: RunConfig, root: str | Path | None = None, on_iteration=None) -> RunStore:
    store = RunStore(root or Path(cfg.out_dir) / cfg.name)
    on_iteration = after_each_iteration(cfg, store, on_iteration)  # report.html and trackers, then the caller's
    # Everything that can fail on bad input fails here, before anything is written.
    store.check(to_yaml(cfg), same_config)
    hardware.use(cfg.hardware)  # one place decides device and dtype; every model load asks it
    task = registry.build("task", cfg.task)
    pool, held_out = task.train_pool(), task.eval_set()
    _check_disjoint(pool, held_out)
    check_task(cfg.method, cfg.iterations, task)  # before any model is loaded (the trainer: at validation)
    base = resolve(cfg.model, task, seed=cfg.seed, warm_start_steps=cfg.warm_start_steps)
    backend: Backend = registry.build("backend", cfg.backend)
    method: Method = registry.build("method", cfg.method)
    trainer: Trainer = registry.build("trainer", cfg.trainer)
    problems = {p.id: p for p in [*pool, *held_out]}
    with store.lock():
        store.create_or_check(to_yaml(cfg), same_config)

        def at(k: int, model: str) -> Iteration:
            return Iteration(k, cfg, task, backend, trainer, base, model, checkpoint_hash(model),
                             str(store.checkpoint(k)), problems)

        # Iteration 0: the starting model, measured before any self-training.
        it = at(0, base)
        _stage(store, 0, "evaluate", lambda: _evaluate(store, it))
        _stage(store, 0, "monitor", lambda: _monitor(store, it))
        _finish(store, cfg, 0, base, on_iteration)
        with run_progress(cfg.iterations) as at_iteration:  # "iteration k of N, elapsed, about T left"
            for k in range(1, cfg.iterations + 1):
                if any(m.get("gate/stop") for m in store.metrics()[:k]):
                    break
                at_iteration(k)
                it = at(k, _model_after(store, k - 1, base))
                _stage(store, k, "generate", lambda: _generate(store, it, method, pool))
                _stage(store, k, "verify", lambda: _verify(store, it))
                _stage(store, k, "select", lambda: _select(store, it, method))
                _stage(store, k, "train", lambda: _train(store, it, method))
                after = at(k, _model_after(store, k, base))
                _stage(store, k, "evaluate", lambda: _evaluate(store, after))
                _stage(store, k, "monitor", lambda: _monitor(store, after))
                if _finish(store, cfg, k, after.model, on_iteration):
                    break
        return store


def _finish(store: RunStore, cfg: RunConfig, k: int, model: str, on_iteration) -> str:
    """Gate: merge the stage metrics into iter_k/metrics.json, add the collapse warnings
    and decide whether to go on. Returns why the run stops, or '' to continue."""
    merged = {"iteration": k, "model": model}
    for s in STAGES:
        merged.update(store.done(k, s) or {})
    history = [*store.metrics()[:k], merged]
    merged.update(detector.decide(cfg.gate, history))
    store.write_metrics(k, merged)
    if merged["gate/stop"] or k == cfg.iterations:  # the run ends here: point result.json at its model
        detector.write_result(store.root, cfg.gate, history, merged["gate/stop"])
    if on_iteration:
        on_iteration(store, {"iteration": k, **merged})
    return merged["gate/stop"]


def _generate(store: RunStore, it: Iteration, method: Method, pool) -> dict:
    rows = method.generate(it, pool)
    store.write_rows(it.k, "samples", rows)
    phases = [r["phase"] for r in rows]
    return {"gen/samples": len(rows), "gen/problems": len({r["problem_id"] for r in rows}),
            **{f"gen/{p}": phases.count(p) for p in sorted(set(phases))}}


def _verify(store: RunStore, it: Iteration) -> dict:
    rows = it.score(store.rows(it.k, "samples"))
    store.write_rows(it.k, "samples", rows)
    first = [r for r in rows if r["phase"] == "sample"]
    return {"verify/correct_frac": sum(r["correct"] for r in first) / max(1, len(first)),
            "verify/correct": sum(r["correct"] for r in rows)}


def _select(store: RunStore, it: Iteration, method: Method) -> dict:
    rows, train, extra = method.select(it, store.rows(it.k, "samples"))
    train, mixed = mix(it, store, rows, train)  # natural data, dedup, cap, accumulate (mix.py)
    store.write_rows(it.k, "samples", rows)
    store.write_rows(it.k, "train", train)
    kept = [r for r in rows if r["kept"]]
    wrong_working = [r for r in kept if r.get("steps_ok") is False]
    return {"select/kept": len(kept), "select/train_rows": len(train),
            "select/kept_rationalized": sum(r["phase"] == "rationalize" for r in kept),
            "select/kept_wrong_working_frac": len(wrong_working) / len(kept) if kept else 0.0, **extra, **mixed}


def _train(store: RunStore, it: Iteration, method: Method) -> dict:
    """The method trains through ``it.train``, which leaves ``iter_k/checkpoint``."""
    rows = store.rows(it.k, "train")
    if not rows:
        return {"train/skipped": 1}
    metrics = method.train(it, rows)
    if metrics.get("train/epochs", 0) > MAX_EPOCHS and len(rows) < SMALL_SET:  # a tiny set trained over and over
        metrics["train/warning"] = f"{metrics['train/epochs']:.1f} epochs over {len(rows)} rows"
        print(f"warning: iteration {it.k}: {metrics['train/warning']} (overfitting likely)", flush=True)
    return metrics


def _evaluate(store: RunStore, it: Iteration) -> dict:
    """Held-out accuracy of the model iteration ``it.k`` ended with."""
    rows, metrics = evaluate(it, it.cfg.eval.limit)
    store.write_rows(it.k, "eval", rows)
    revision = hub_revision(it.cfg.model)  # the hub commit a `model: org/name` resolved to
    return {**metrics, "eval/checkpoint_hash": it.model_hash, **({"model/hub_revision": revision} if revision else {})}


def _monitor(store: RunStore, it: Iteration) -> dict:
    """Collapse metrics of iteration ``it.k``: its samples, its held-out outputs, natural-data perplexity."""
    from selftaught.monitor.collapse import measure

    has_samples = (store.root / f"iter_{it.k:03d}" / "samples.parquet").is_file()
    return measure(it, store.rows(it.k, "samples") if has_samples else None, store.rows(it.k, "eval"))


def _check_disjoint(pool, held_out) -> None:
    """Contamination guard: no held-out problem may be in the train pool, by id or
    by normalized text (``contamination.py``); prints the overlap and refuses."""
    from selftaught.contamination import check_disjoint

    check_disjoint(pool, held_out)
