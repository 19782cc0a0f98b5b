"""The registry: what a recipe's ``type:`` names, imported only when named, so
``import selftaught`` stays cheap (no torch, TRL, vLLM or Ray until a recipe asks).

A ``type:`` is one of
- a built-in: a file name in the component's folder (``jsonl`` -> ``tasks/jsonl.py``),
  ``name:arg`` forms resolving by the part before the colon (``reasoning_gym:chain_sum``);
- an import path to your own code: ``my_pkg.tasks:MyTask``, ``my_pkg.tasks`` (the
  module itself), ``./my_task.py:MyTask`` or ``/abs/my_task.py`` -- anything with a
  ``/``, a ``.py`` or a dotted module before the colon, or a module that is no
  built-in's name but can be imported;
- ``python:<name>``: an object handed to ``selftaught.run`` in this process (api.py).

A plugin has the built-ins' shape: a ``Config`` (a ``Component``) and a ``build(cfg)``.
``Name`` may be such a namespace, or a class/factory called as ``Name(cfg)`` whose
``Config`` is ``Name.Config`` or the module's ``Config``. Files are imported once
per process under a name derived from their absolute path.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Literal, overload

if TYPE_CHECKING:  # the protocols, for types only: importing them here would load each folder's package
    from selftaught.backends import Backend
    from selftaught.methods import Method
    from selftaught.tasks import Task
    from selftaught.trainers import Trainer

FOLDERS = {"task": "tasks", "backend": "backends", "method": "methods", "trainer": "trainers"}
PYTHON = "python:"
_OBJECTS: dict[str, object] = {}  # python:<name> -> the object selftaught.run was given


class PluginError(ValueError):
    """An import path that does not lead to a usable component; names the spec and why."""


def available(kind: str) -> list[str]:
    """Built-in types of ``kind``: the file names of its folder."""
    pkg = importlib.import_module(f"selftaught.{FOLDERS[kind]}")
    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def is_import_path(spec: str, builtins: list[str] = ()) -> bool:
    """Does ``spec`` point at user code rather than a built-in (see the module note)?"""
    spec = str(spec)
    if spec.startswith(PYTHON):
        return False
    head = spec.split(":", 1)[0]
    if _is_file(spec) or "." in head:
        return True
    try:
        return head not in builtins and importlib.util.find_spec(head) is not None
    except (ImportError, ValueError):
        return False


def _is_file(spec: str) -> bool:
    head = _split(spec)[0]
    return "/" in head or head.endswith(".py") or head.startswith("~")


def _split(spec: str) -> tuple[str, str | None]:
    """``./a/b.py:Name`` -> ("./a/b.py", "Name"); ``C:`` drive letters are not a concern here."""
    head, sep, name = str(spec).rpartition(":")
    if not sep or "/" in name or name.endswith(".py"):
        return str(spec), None
    return head, name


def absolute(spec: str) -> str:
    """A file spec with its path made absolute (relative paths are from the current
    directory), so the saved config resumes from anywhere; other specs unchanged."""
    if not isinstance(spec, str) or spec.startswith(PYTHON) or not _is_file(spec):
        return spec
    path, name = _split(spec)
    full = str(Path(path).expanduser().resolve())
    return f"{full}:{name}" if name else full


def import_module(path_or_module: str, spec: str) -> ModuleType:
    """The module of a spec: a file path (imported once, by absolute path) or a dotted name."""
    if not _is_file(path_or_module):
        try:
            return importlib.import_module(path_or_module)
        except Exception as e:
            raise PluginError(f"`{spec}`: cannot import module `{path_or_module}`: {type(e).__name__}: {e}") from e
    file = Path(path_or_module).expanduser().resolve()
    if not file.is_file():
        raise PluginError(f"`{spec}`: no such file {file}")
    name = f"selftaught_plugin_{file.stem}_{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise PluginError(f"`{spec}`: importing {file} failed: {type(e).__name__}: {e}") from e
    return module


def resolve_object(spec: str):
    """The Python object a spec names: ``pkg.mod:name``, ``./file.py:name``, the module
    itself when there is no ``:name``, or a ``python:<name>`` object registered here."""
    if str(spec).startswith(PYTHON):
        key = spec[len(PYTHON):]
        if key not in _OBJECTS:
            raise PluginError(
                f"`{spec}` was a Python object passed to selftaught.run in the process that started this run; "
                f"it cannot be rebuilt from config.yaml. Resume from Python and pass it again, e.g. "
                f"selftaught.run(RUN_DIR, {key.split('.')[0]}=...), or name it by "
                "import path (`my_pkg.mod:Name` or `./file.py:Name`) so the CLI can import it.")
        return _OBJECTS[key]
    path, name = _split(spec)
    module = import_module(path, spec)
    if name is None:
        return module
    for part in name.split("."):
        if not hasattr(module, part):
            have = ", ".join(n for n in dir(module) if not n.startswith("_"))[:300]
            raise PluginError(f"`{spec}`: {path} has no `{name}` (it defines: {have})")
        module = getattr(module, part)
    return module


def register(key: str, obj) -> str:
    """Make ``obj`` reachable as ``python:<key>`` in this process; returns the spec."""
    _OBJECTS[key] = obj
    return PYTHON + key


def _as_component(obj, spec: str):
    """Something with ``Config`` and ``build``, from what a spec names."""
    from selftaught.component import Component

    if hasattr(obj, "Config") and hasattr(obj, "build"):
        return obj
    if isinstance(obj, ModuleType):
        raise PluginError(f"`{spec}`: a plugin module needs a `Config` class and a `build(cfg)` function")
    if isinstance(obj, type) or callable(obj):
        module = sys.modules.get(getattr(obj, "__module__", ""), None)
        cfg = getattr(obj, "Config", None) or getattr(module, "Config", None)
        if cfg is None:
            raise PluginError(f"`{spec}`: found {obj!r} but no `Config` class on it or in its module")
        return SimpleNamespace(Config=cfg, build=lambda c, **kw: obj(c, **kw))
    return SimpleNamespace(Config=Component, build=lambda c, **kw: obj)  # an instance: used as it is


def load(kind: str, type_: str):
    """The module (or namespace) implementing ``type_``: it has ``Config`` and ``build``."""
    if kind not in FOLDERS:
        raise ValueError(f"unknown component kind {kind!r}; kinds: {', '.join(FOLDERS)}")
    builtins = available(kind)
    spec = str(type_)
    if spec.startswith(PYTHON) or is_import_path(spec, builtins):
        return _as_component(resolve_object(spec), spec)
    name = spec.split(":", 1)[0]
    if name not in builtins:
        raise ValueError(f"unknown {kind} type {type_!r}; available: {', '.join(builtins)}; or your own "
                         "by import path: `my_pkg.mod:Name` or `./my_file.py:Name`")
    return importlib.import_module(f"selftaught.{FOLDERS[kind]}.{name}")


@overload
def build(kind: Literal["task"], cfg, **kwargs) -> Task: ...
@overload
def build(kind: Literal["backend"], cfg, **kwargs) -> Backend: ...
@overload
def build(kind: Literal["method"], cfg, **kwargs) -> Method: ...
@overload
def build(kind: Literal["trainer"], cfg, **kwargs) -> Trainer: ...


def build(kind: str, cfg, **kwargs):
    """Instantiate the component a validated config section describes: a ``Task``,
    ``Backend``, ``Method`` or ``Trainer`` (the protocols in each folder's __init__)."""
    return load(kind, cfg.type).build(cfg, **kwargs)
