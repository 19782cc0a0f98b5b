"""Trainers fine-tune a model on kept records. ``type:`` picks a file here."""

from __future__ import annotations

from typing import ClassVar, Protocol

from selftaught.component import Component


class TrainerConfig(Component):
    """Base of a trainer's ``Config``: ``objective`` is what it trains (``sft``, ``dpo``,
    ``grpo``), matched against what a method declares it needs (``methods.check``)."""

    objective: ClassVar[str] = "sft"
    steps: int


class Trainer(Protocol):
    def train(self, init_model: str, rows: list[dict], out_dir: str, *, seed: int, position_tracker=None,
              desc: str = "train", steps: int | None = None, **objective) -> dict:
        """Fine-tune ``init_model`` on ``rows``, save an HF model directory to ``out_dir``,
        return ``train/`` metrics. ``steps`` None: the trainer's own ``steps``. The rows
        and ``objective`` keywords are the objective's: prompt/completion (sft),
        prompt/chosen/rejected and ``ref_model`` (dpo), prompts and ``reward_fn`` (grpo)."""


_FROZEN = False


def freeze_imports() -> None:
    """Once per process, after the trainers' heavy imports: move every object alive now
    (torch, transformers, TRL and their module state, ~0.5M objects) out of the cyclic
    garbage collector's reach with ``gc.freeze()``. Why: accelerate's ``release_memory``
    calls ``gc.collect()`` at the end of every Trainer run, and a full collection walks
    all of them -- 0.5 s a stage on a 2-core box, for nothing. A collection first, so no
    garbage is frozen; refcounting still frees frozen objects, only cycles among them
    would stay. A model alive at the freeze (iteration 1's sampling model) holds no
    cycle and is freed when the backend loads the next one
    (``tests/unit/test_hf_backend.py``)."""
    global _FROZEN
    if not _FROZEN:
        import gc

        gc.collect()
        gc.freeze()
        _FROZEN = True


def scratch_dir(kind: str):
    """The Trainer's own output folder (we save checkpoints ourselves): a temp dir removed
    when the stage ends, and also when the process exits early (Ctrl-C, an exception)."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    work = Path(tempfile.mkdtemp(prefix=f"selftaught-{kind}-"))
    atexit.register(shutil.rmtree, work, True)
    return work


def save_checkpoint(model, tokenizer, out_dir: str) -> None:
    """Write to ``<out_dir>.tmp`` and rename: a half-written checkpoint never looks finished."""
    import shutil
    from pathlib import Path

    tmp = Path(str(out_dir) + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
