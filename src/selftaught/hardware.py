"""One place decides the hardware: the device and dtype every model of a run uses.

A run's ``hardware:`` section (``config.HardwareConfig``) is resolved once, at
the start of the run, by ``use(cfg.hardware)``; every model load and every
trainer then reads ``resolved()``: the ``hf`` backend (lean decoder and HF
fallback), the SFT/DPO/GRPO trainers, the perplexity monitor, the reward model,
and through the backend the judges and inference-time strategies. Nothing else
looks at ``torch.cuda``.

``auto`` means CUDA and bfloat16 where torch sees a GPU that supports bf16,
CUDA and float32 on an older GPU (fp16 training needs loss scaling and can
overflow: ask for it explicitly), else CPU and float32 -- bf16 is slower than
fp32 on CPUs without AMX (measured: 138 vs 260 GFLOP/s), so on a CPU ``auto``
is exactly what selftaught always did.

Why a process-wide setting rather than an argument threaded through every
component: backends, trainers and monitors are built by the registry from their
own config sections and called by methods; the hardware is a property of the
machine and the run, not of any one of them. ``use()`` also writes the resolved
setting to ``$SELFTAUGHT_HARDWARE``, so processes the run starts (``accelerate
launch`` of a train stage, local Ray workers) resolve to the same thing.
Without ``use()`` (library calls, tests) ``resolved()`` resolves the defaults.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

ENV = "SELFTAUGHT_HARDWARE"


@dataclass(frozen=True)
class Hardware:
    """A resolved setting: never ``auto``."""

    device: str  # "cpu" | "cuda"
    dtype: str  # "float32" | "bfloat16" | "float16"
    gradient_checkpointing: bool = False

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def torch_device(self) -> str:
        """Where an inference model goes: this process's GPU under ``accelerate launch``/torchrun."""
        if self.device == "cuda" and "LOCAL_RANK" in os.environ:
            return f"cuda:{os.environ['LOCAL_RANK']}"
        return self.device

    def load_dtype(self, for_training: bool = False) -> str:
        """Weights dtype of a loaded model. fp16 trains as float32 weights under fp16
        autocast (the Trainer's GradScaler refuses fp16 parameters); bf16 trains in bf16."""
        return "float32" if for_training and self.dtype == "float16" else self.dtype

    def trainer_args(self) -> dict:
        """The ``TrainingArguments`` fields that follow the hardware (SFT, DPO, GRPO)."""
        return {"use_cpu": self.device == "cpu", "bf16": self.dtype == "bfloat16", "fp16": self.dtype == "float16",
                "gradient_checkpointing": self.gradient_checkpointing}

    def describe(self) -> str:
        """One line for people: ``cuda (NVIDIA H200), bfloat16``."""
        where = self.device
        if self.device == "cuda":
            import torch

            where += f" ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} visible)"
        extra = ", gradient checkpointing" if self.gradient_checkpointing else ""
        return f"{where}, {self.dtype}{extra}"


def resolve(cfg=None) -> Hardware:
    """A ``HardwareConfig`` (None: all defaults) to a concrete ``Hardware``; asking for
    CUDA where there is none is an error, not a silent fall back to the CPU."""
    import torch

    device = getattr(cfg, "device", "auto")
    dtype = getattr(cfg, "dtype", "auto")
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ValueError(f"hardware.device: cuda, but torch sees no CUDA device (torch {torch.__version__}, "
                         f"CUDA build {torch.version.cuda}, CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
                         "use hardware.device=auto or cpu")
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if dtype == "auto":
        dtype = "bfloat16" if device == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    return Hardware(device, dtype, bool(getattr(cfg, "gradient_checkpointing", False)))


_current: Hardware | None = None


def use(cfg=None) -> Hardware:
    """Resolve a run's ``hardware:`` section once; every later model load in this
    process (and in the processes it starts) follows it. Call at run start."""
    global _current
    _current = resolve(cfg)
    os.environ[ENV] = json.dumps(asdict(_current))
    return _current


def resolved() -> Hardware:
    """The run's hardware: what ``use()`` set, else what a parent process set, else the defaults."""
    global _current
    if _current is None:
        raw = os.environ.get(ENV)
        _current = Hardware(**json.loads(raw)) if raw else resolve(None)
    return _current


def metrics(stage: str | None = None) -> dict:
    """Where a stage ran, for its metrics: ``{"hw/device": "cpu", "hw/dtype": "float32"}``,
    or with ``stage="train"``: ``{"hw/train/device": ..., "hw/train/dtype": ...}``."""
    hw = resolved()
    prefix = f"hw/{stage}/" if stage else "hw/"
    return {prefix + "device": hw.device, prefix + "dtype": hw.dtype}
