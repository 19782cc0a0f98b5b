"""Where a recipe's ``model:`` string points, and loading it.

``model:`` is an HF model directory, a ``.gguf`` file, or ``builtin:<name>``.
Every form resolves to a normal HF model directory on disk, which is then loaded
by the one code path below (``load_pretrained``): the built-in tiny model, real
pretrained models and every iteration's checkpoint alike.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path


def cache_dir() -> Path:
    """Models built or converted by selftaught live here (``SELFTAUGHT_CACHE`` overrides)."""
    return Path(os.environ.get("SELFTAUGHT_CACHE", Path.home() / ".cache" / "selftaught"))


def resolve(spec: str, task=None, seed: int = 0, warm_start_steps: int = 500) -> str:
    """A model spec to an HF model directory, building/converting it once if needed."""
    if spec.startswith("builtin:"):
        name = spec.split(":", 1)[1]
        if name == "tiny":
            from selftaught.models import tiny

            return str(tiny.ensure(task, seed=seed, steps=warm_start_steps))
        from selftaught.models import builtin

        return str(builtin.ensure(name))
    path = Path(spec).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"model {spec!r}: no such directory or file")
    if path.is_file() and path.suffix == ".gguf":
        from selftaught.models import gguf

        return str(gguf.ensure(path))
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"model {spec!r}: directory has no config.json, so it is not an HF model directory")
    return str(path)


def quiet_hf() -> None:
    """Our own progress bars show long work; the libraries' per-call bars and
    notices ("Loading weights", "Tokenizing train dataset", deprecations inside
    TRL's own config) would bury them."""
    import warnings

    import datasets
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers\.")


def load_pretrained(path: str, for_training: bool = False):
    """(model, tokenizer) in float32 on CPU -- bf16 is slower than fp32 on this
    class of CPU (../shared/FACTS.md)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_hf()
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.train(for_training)
    return model, tok


@lru_cache(maxsize=64)
def _hash_files(files: tuple[tuple[str, float, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


def checkpoint_hash(path: str) -> str:
    """Content hash of a checkpoint's weights (12 hex), recorded in every sample's provenance."""
    p = Path(path)
    files = sorted(p.glob("*.safetensors")) or sorted(p.glob("*.bin")) or ([p] if p.is_file() else [])
    if not files:
        return "unknown"
    return _hash_files(tuple((str(f), f.stat().st_mtime, f.stat().st_size) for f in files))
