"""The run config: typed, validated once, never mutated, saved with the run.

A recipe is YAML. Each component section names its implementation with ``type:``
(the registry key, a file name) and the rest of the section is validated by that
file's ``Config`` class. Overrides on the command line use dotted keys:
``trainer.lr=1e-4 iterations=3``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError, field_validator


class Component(BaseModel):
    """Base of every component's ``Config``: unknown keys are errors, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: str


class EvalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_new_tokens: int = Field(160, description="generation budget for held-out answers")
    pass_k: int = Field(0, description="if > 0, also sample this many per problem and report pass@k (unbiased)")
    temperature: float = Field(1.0, description="temperature of the pass@k samples (pass@1 is greedy)")
    limit: int | None = Field(None, description="evaluate at most this many held-out problems (debugging)")


class GateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    patience: int | None = Field(None, description="stop when eval/acc has not improved for this many iterations")
    min_delta: float = Field(0.0, description="an improvement smaller than this does not count")


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field("star-arithmetic", description="run directory name under out_dir")
    out_dir: str = Field("runs", description="where run directories are created")
    seed: int = Field(0, description="seeds every sampler, split and trainer of the run")
    iterations: int = Field(5, ge=0, description="self-improvement iterations after the iteration-0 evaluation")
    model: str = Field("builtin:tiny", description="HF model dir, .gguf file, or builtin:<name>")
    warm_start_steps: int = Field(500, ge=1, description="SFT steps on the task's seed set when selftaught builds the model (builtin:tiny)")
    task: SerializeAsAny[Component]
    backend: SerializeAsAny[Component]
    method: SerializeAsAny[Component]
    trainer: SerializeAsAny[Component]
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()

    @field_validator("task", "backend", "method", "trainer", mode="before")
    @classmethod
    def _typed(cls, value: Any, info) -> Component:
        from selftaught import registry

        if isinstance(value, Component):
            return value
        if isinstance(value, str):
            value = {"type": value}
        if not isinstance(value, dict) or "type" not in value:
            raise ValueError(f"must be a mapping with a `type:` key, e.g. `{info.field_name}: {{type: ...}}`")
        return registry.load(info.field_name, value["type"]).Config.model_validate(value)


DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "star_arithmetic.yaml"


class ConfigError(ValueError):
    """A recipe problem, phrased for the person who wrote the recipe."""


def _set_dotted(tree: dict, key: str, raw: str) -> None:
    *parents, leaf = key.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}={raw}: `{p}` is not a section")
    node[leaf] = yaml.safe_load(raw)  # "3" -> 3, "1e-4" -> "1e-4" is fixed by pydantic, "[1, 7]" -> list


def _line_of(path: Path, loc: tuple) -> str:
    """Line number of a dotted location in a YAML file, for error messages."""
    try:
        node = yaml.compose(path.read_text())
    except Exception:
        return ""
    for key in loc:
        if not isinstance(node, yaml.MappingNode):
            break
        match = [v for k, v in node.value if k.value == str(key)]
        if not match:
            break
        node = match[0]
    return f", line {node.start_mark.line + 1}" if node is not None else ""


def load(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a recipe (default: the built-in STaR arithmetic demo), apply overrides, validate."""
    path = Path(path) if path else DEFAULT_RECIPE
    if not path.is_file():
        raise ConfigError(f"{path}: no such recipe file")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a recipe is a YAML mapping, got {type(tree).__name__}")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override `{item}`: expected key=value, e.g. trainer.lr=1e-4")
        _set_dotted(tree, *item.split("=", 1))
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
            field = ".".join(str(x) for x in loc) or "(top level)"
            got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
            lines.append(f"  {path}{_line_of(path, loc)}: field `{field}`: {err['msg']}{got}")
        raise ConfigError("invalid recipe:\n" + "\n".join(lines)) from None


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
