"""The Python API: ``selftaught.run`` and ``selftaught.load_run``.

    import selftaught

    def within_1pct(problem, completion):            # your verifier: a plain function
        ...
    run = selftaught.run("recipes/star_smollm2_gsm8k.yaml", ["iterations=2"], verifier=within_1pct)
    run.metrics[-1]["eval/acc"], run.best["model"], run.records("samples", iteration=1)[:3]

It takes what the CLI takes -- a recipe, a run directory (resume) or nothing (the
built-in demo), plus ``key=value`` overrides -- and also a recipe as a dict or a
validated ``RunConfig``. Any component may be a Python object instead: ``task=``,
``backend=``, ``method=``, ``trainer=`` (an instance, or a class/module with the
plugins' ``Config`` + ``build`` shape), ``verifier=`` (the task's check) and
``scorer=`` (a method's reward). A string there is an import-path spec.

Why objects go through names: the object is registered in this process as
``python:<role>.<name>`` (registry.py) and that spec is written into the config,
so ``config.yaml`` says what was used and the loop builds components the one way
it always does. Such a run cannot be rebuilt by the CLI; resuming it there says
which objects to pass again (``selftaught.run(RUN_DIR, verifier=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

COMPONENTS = ("task", "backend", "method", "trainer")


@dataclass
class Run:
    """A run directory, read on demand: metrics, the best checkpoint, the records."""

    root: Path

    @property
    def config(self):
        from selftaught import config

        return config.validate(yaml.safe_load((self.root / "config.yaml").read_text()), self.root / "config.yaml")

    @property
    def metrics(self) -> list[dict]:
        """One dict per finished iteration (iteration 0 is the starting model)."""
        from selftaught.store import RunStore

        return RunStore(self.root).metrics()

    def table(self):
        """The metrics as a pandas DataFrame, one row per iteration."""
        import pandas as pd

        return pd.DataFrame(self.metrics).set_index("iteration")

    @property
    def best(self) -> dict:
        """The best held-out iteration by the gate's accuracy metric: iteration, model
        (its checkpoint, or the starting model for iteration 0) and the metric."""
        from selftaught.monitor.detector import best_iteration

        history = self.metrics
        metric = yaml.safe_load((self.root / "config.yaml").read_text()).get("gate", {}).get("accuracy_metric", "eval/acc")
        k = best_iteration(history, metric)
        if k is None:
            return {}
        m = next(m for m in history if m["iteration"] == k)
        return {"iteration": k, "model": m.get("model"), metric: m.get(metric)}

    @property
    def result(self) -> dict:
        """``result.json``: the model the run ended with and why (empty while it runs)."""
        p = self.root / "result.json"
        return yaml.safe_load(p.read_text()) if p.is_file() else {}

    def records(self, kind: str = "samples", iteration: int | None = None) -> list[dict]:
        """Rows of ``samples``, ``train`` or ``eval`` parquet files: one iteration's, or all."""
        from selftaught.store import RunStore

        store = RunStore(self.root)
        ks = [iteration] if iteration is not None else store.iterations()
        return [r for k in ks if (self.root / f"iter_{k:03d}" / f"{kind}.parquet").is_file() for r in store.rows(k, kind)]


def load_run(path: str | Path) -> Run:
    """An existing run directory (finished, interrupted or running)."""
    root = Path(path)
    if not (root / "config.yaml").is_file():
        from selftaught.store import RunDirError

        raise RunDirError(f"{root}: not a selftaught run (no config.yaml)")
    return Run(root)


def _name(obj) -> str:
    """A function's or class's own name, else the class name of an instance."""
    return (getattr(obj, "__name__", None) or type(obj).__name__).strip("<>")


def _python_specs(tree: dict) -> dict[str, str]:
    """role -> ``python:`` spec in a saved config tree (what must be passed again)."""
    found = {role: tree.get(role, {}).get("type") for role in COMPONENTS if isinstance(tree.get(role), dict)}
    found["verifier"] = (tree.get("task") or {}).get("verifier")
    found["scorer"] = (tree.get("method") or {}).get("scorer")
    return {k: v for k, v in found.items() if isinstance(v, str) and v.startswith("python:")}


def _register(objects: dict, saved: dict | None) -> dict[str, str]:
    """Register each object; returns role -> spec. Resuming, the saved spec's name is reused."""
    from selftaught import registry

    specs = {}
    for role, obj in objects.items():
        if obj is None:
            continue
        if isinstance(obj, str):  # an import-path spec or a built-in name
            specs[role] = obj
            continue
        key = (saved or {}).get(role, f"python:{role}.{_name(obj)}")[len(registry.PYTHON):]
        specs[role] = registry.register(key, obj)
    return specs


def _apply(tree: dict, specs: dict[str, str]) -> dict:
    from selftaught import registry
    from selftaught.config import ConfigError

    tree = dict(tree)
    for role, spec in specs.items():
        if role in COMPONENTS:
            tree[role] = {"type": spec}
            continue
        section = "task" if role == "verifier" else "method"
        node = tree.get(section)
        node = dict({"type": node} if isinstance(node, str) else node or {})
        fields = registry.load(section, node.get("type", "")).Config.model_fields
        if role not in fields:
            raise ConfigError(f"{role}=: the {section} `{node.get('type')}` has no `{role}` setting "
                              f"({'arithmetic, jsonl and dataset take a verifier' if role == 'verifier' else 'rest and best_of_n take a scorer'})")
        tree[section] = {**node, role: spec}
    return tree


def run(recipe=None, overrides: list[str] = (), *, task=None, backend=None, method=None, trainer=None,
        verifier=None, scorer=None, root: str | Path | None = None, on_iteration=None) -> Run:
    """Run (or resume) a loop and return its ``Run``. ``recipe``: a YAML path, a run
    directory (resume: its saved config; pass again any Python objects it used), a
    dict recipe, a ``RunConfig``, or None for the built-in demo."""
    from selftaught import config, loop

    objects = dict(task=task, backend=backend, method=method, trainer=trainer, verifier=verifier, scorer=scorer)
    if recipe is not None and not isinstance(recipe, (dict, config.RunConfig)) and Path(recipe).is_dir():
        root = Path(recipe)
        saved = yaml.safe_load((root / "config.yaml").read_text()) if (root / "config.yaml").is_file() else None
        if saved is None:
            raise config.ConfigError(f"{root}: a directory without config.yaml is not a selftaught run")
        if overrides:
            raise config.ConfigError("a run's config is fixed at start; overrides cannot be applied when resuming")
        _register({k: v for k, v in objects.items() if not isinstance(v, str)}, _python_specs(saved))
        cfg = config.load(root / "config.yaml")
    else:
        specs = _register(objects, None)
        if isinstance(recipe, config.RunConfig):
            tree = recipe.model_dump(mode="json")
        elif isinstance(recipe, dict):
            tree = recipe
        else:
            tree = config.read(recipe)
        tree = _apply(config.apply_overrides(tree, list(overrides)), specs)
        cfg = config.validate(config.absolute_specs(tree), recipe if isinstance(recipe, (str, Path)) else "(config)")
    store = loop.run(cfg, root or Path(cfg.out_dir) / cfg.name, on_iteration=on_iteration)
    return Run(Path(store.root))

