"""What a user sees of a run: ``report.html`` (html.py), ``selftaught compare``
(compare.py), ``selftaught inspect`` (inspect.py) and experiment trackers
(trackers.py). ``after_each_iteration`` is what the loop calls when an iteration ends."""

from __future__ import annotations

import warnings


def after_each_iteration(cfg, store, on_iteration=None):
    """Wrap the loop's ``on_iteration`` callback: after every iteration, rebuild
    ``report.html`` and log to the recipe's trackers, then call ``on_iteration``.
    A report or tracker that fails warns; it never stops the run. A tracker whose
    library is missing is an error here, before the run starts."""
    from selftaught.report.trackers import Trackers

    trackers = Trackers(getattr(cfg, "report_to", ()), store.root, cfg.name, cfg.model_dump(mode="json"))
    # Iterations finished by an earlier process were logged by it: a resumed run replays
    # them through this hook (report, gate) but must not log them twice. (A crash between
    # an iteration's metrics.json and its tracker call leaves that one step unlogged.)
    logged = {m["iteration"] for m in store.metrics()} if (store.root / "config.yaml").is_file() else set()

    def hook(store_, metrics: dict) -> None:
        from selftaught.report.html import build_report

        try:
            build_report(store_.root)
        except Exception as e:  # the report is a view; losing it must not lose the run
            warnings.warn(f"could not rebuild {store_.root / 'report.html'}: {type(e).__name__}: {e}", stacklevel=2)
        try:
            if metrics["iteration"] not in logged:
                trackers.log(metrics, step=metrics["iteration"])
        except Exception as e:
            warnings.warn(f"report_to {trackers.names}: logging iteration {metrics['iteration']} failed: "
                          f"{type(e).__name__}: {e}", stacklevel=2)
        if metrics.get("gate/stop") or metrics["iteration"] >= cfg.iterations:
            trackers.close()  # the last iteration: finish the W&B / MLflow run
        if on_iteration:
            on_iteration(store_, metrics)

    return hook
