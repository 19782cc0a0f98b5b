"""Loop-level metrics to W&B, TensorBoard or MLflow (``report_to: [tensorboard]``).

One step per iteration: whatever the iteration's metrics.json holds that is a
number (eval/acc, eval/acc/<group>, gen/, select/, train/, collapse/, time/).
The trainer's own per-step logging is separate and unaffected. Each library is
imported only when a recipe names it; a named library that is not installed is
an error before the run starts, not a silent no-op.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

from selftaught.report.rundata import is_number

NAMES = ("wandb", "tensorboard", "mlflow")
# What `import` each tracker needs, and the pip package that provides it.
MODULES = {"wandb": ("wandb", "wandb"), "tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow")}


class TrackerError(ValueError):  # a recipe problem: the CLI prints it as one
    pass


def check(names) -> None:
    """Raise if a named tracker is unknown or its library is not installed."""
    for name in names:
        if name not in MODULES:
            raise TrackerError(f"report_to: unknown tracker {name!r}; choose from {', '.join(NAMES)}")
        module, package = MODULES[name]
        if importlib.util.find_spec(module) is None:
            raise TrackerError(f"report_to names {name!r} but the `{module}` package is not installed: "
                               f"pip install {package}  (or remove it from report_to)")


def numeric(metrics: dict) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if is_number(v) and k != "iteration"}


class _TensorBoard:
    def __init__(self, root: Path, name: str, config: dict) -> None:
        from torch.utils.tensorboard import SummaryWriter  # needs the `tensorboard` package

        self.writer = SummaryWriter(log_dir=str(root / "tensorboard"))
        self.writer.add_text("config", "```\n" + _yaml(config) + "\n```", 0)

    def log(self, metrics: dict, step: int) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()  # a crash must not lose the iteration that just finished

    def close(self) -> None:
        self.writer.close()


class _WandB:
    def __init__(self, root: Path, name: str, config: dict) -> None:
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project="selftaught", name=name, dir=str(root), config=config, resume="allow")

    def log(self, metrics: dict, step: int) -> None:
        self.run.log(metrics, step=step)

    def close(self) -> None:
        self.run.finish()


class _MLflow:
    BAD = re.compile(r"[^\w\-. /]")  # MLflow metric names: alphanumerics, _ - . space /

    def __init__(self, root: Path, name: str, config: dict) -> None:
        import mlflow

        self.mlflow = mlflow
        self.run = mlflow.start_run(run_name=name)
        mlflow.log_params({k: str(v)[:500] for k, v in _flatten(config).items()})

    def log(self, metrics: dict, step: int) -> None:
        self.mlflow.log_metrics({self.BAD.sub("_", k): v for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


KINDS = {"tensorboard": _TensorBoard, "wandb": _WandB, "mlflow": _MLflow}


class Trackers:
    """The trackers a run names; opened on the first ``log`` (after iteration 0)."""

    def __init__(self, names, root: Path, name: str, config: dict) -> None:
        check(names)
        self.names, self.root, self.name, self.config = list(names), Path(root), name, config
        self.open: list = []

    def log(self, metrics: dict, step: int) -> None:
        if self.names and not self.open:
            self.open = [KINDS[n](self.root, self.name, self.config) for n in self.names]
        values = numeric(metrics)
        for t in self.open:
            t.log(values, step)

    def close(self) -> None:
        for t in self.open:
            t.close()
        self.open = []


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _yaml(config: dict) -> str:
    import yaml

    return yaml.safe_dump(config, sort_keys=False)
