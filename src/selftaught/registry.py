"""The registry: a recipe's ``type:`` is a file name in the component's folder,
imported only when named, so ``import selftaught`` stays cheap (no torch, TRL,
vLLM or Ray until a recipe asks for them)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType



FOLDERS = {"task": "tasks", "backend": "backends", "method": "methods", "trainer": "trainers"}


def available(kind: str) -> list[str]:
    pkg = importlib.import_module(f"selftaught.{FOLDERS[kind]}")
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def load(kind: str, type_: str) -> ModuleType:
    """The module implementing ``type_``; ``name:arg`` types (``reasoning_gym:chain_sum``)
    resolve by the part before the colon."""
    if kind not in FOLDERS:
        raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(FOLDERS)}")
    name = str(type_).split(":", 1)[0]
    if name not in available(kind):
        raise ValueError(f"unknown {kind} type {type_!r}; available: {', '.join(available(kind))}")
    return importlib.import_module(f"selftaught.{FOLDERS[kind]}.{name}")


def build(kind: str, cfg, **kwargs):
    """Instantiate the component a validated config section describes."""
    return load(kind, cfg.type).build(cfg, **kwargs)



