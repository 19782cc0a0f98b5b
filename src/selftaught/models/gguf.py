"""GGUF files as ordinary HF model directories.

transformers loads a GGUF file (de-quantized to float32) but refuses
``save_pretrained`` on the result, because its config still carries the GGUF
``quantization_config``. So ``convert`` drops that, rebuilds the model from the
config, copies the state dict in, and saves a normal safetensors directory
(tokenizer and chat template included). ``ensure`` does it once per file
content and caches the directory under ``cache_dir()/models``; every later load
is a plain ``from_pretrained`` of that directory (0.3 s instead of 15-70 s).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from selftaught.models.loading import build_once, cache_dir

VERSION = 1  # bump when the conversion changes; old cached directories are then ignored


def file_digest(path: Path) -> str:
    """sha256 of the file's content (12 hex): the cache key of its converted directory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def ensure(gguf_path: str | Path, name: str | None = None) -> Path:
    """The cached HF directory converted from ``gguf_path``; converted now if missing."""
    src = Path(gguf_path).expanduser().resolve()
    if not src.is_file():
        raise FileNotFoundError(f"model {gguf_path}: no such GGUF file")
    stem = name or src.stem
    out = cache_dir() / "models" / f"{stem}-gguf{VERSION}-{file_digest(src)}"
    return build_once(out, lambda d: (d / "config.json").is_file(), lambda: _convert_cached(src, out))


def _convert_cached(src: Path, out: Path) -> Path:
    from rich.console import Console

    Console(stderr=True).print(f"[bold]Converting {src.name}[/] to an HF model directory (once; cached in {out})")
    tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    convert(src, tmp)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp.rename(out)  # atomic: a half-converted model never looks finished
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def convert(src: Path, out: Path) -> None:
    """De-quantize ``src`` (a .gguf file) into a float32 safetensors directory ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    except Exception as e:
        raise ValueError(f"model {src}: transformers cannot load this GGUF file: {e}") from e
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(config, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise ValueError(f"model {src}: GGUF weights do not match the rebuilt model "
                         f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    model.tie_weights()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "selftaught_source.json").write_text(json.dumps({"gguf": str(src), "sha256_12": file_digest(src)}) + "\n")
