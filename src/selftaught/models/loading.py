"""Where a recipe's ``model:`` string points, and loading it.

``model:`` is a Hugging Face hub id (``org/name`` or ``org/name@revision``), an
HF model directory, a ``.gguf`` file, or ``builtin:<name>``. Every form resolves
to a normal HF model directory on disk, which is then loaded by the one code
path below (``load_pretrained``): the built-in tiny model, real pretrained
models and every iteration's checkpoint alike, in the device and dtype the run's
``hardware:`` resolved to (``selftaught/hardware.py``).

Hub ids go through ``huggingface_hub.snapshot_download`` and its cache, so
``HF_HOME``/``HF_HUB_CACHE``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` mean what they
mean everywhere else; the directory is the cache's ``snapshots/<commit>``, and
that commit is the run's provenance (``hub_revision``). A local path that exists
wins over a hub id of the same spelling.
"""

from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path

# org/name[@revision], as the hub spells repo ids (one slash; letters, digits, - _ .)
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*(@[\w./-]+)?$")
# Weights in formats transformers does not load from a model directory: skip the bytes.
NOT_NEEDED = ["*.onnx", "onnx/*", "*.gguf", "*.msgpack", "*.h5", "*.tflite", "*.ot", "coreml/*", "openvino/*", "original/*"]
_revisions: dict[str, str] = {}  # hub spec -> the commit it resolved to, in this process


def cache_dir() -> Path:
    """Models built or converted by selftaught live here (``SELFTAUGHT_CACHE`` overrides)."""
    return Path(os.environ.get("SELFTAUGHT_CACHE", Path.home() / ".cache" / "selftaught"))


def build_once(out: Path, done, build):
    """``out`` if ``done(out)``, else ``build()`` (which returns it) under a file lock
    beside it, checked again once held: two processes (runs, test workers) wanting
    the same model at once build it once; the second waits, then reuses it."""
    if done(out):
        return out
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        return out if done(out) else build()


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
    if not path.exists() and is_hub_id(spec):
        return from_hub(spec)
    if not path.exists():
        raise FileNotFoundError(f"model {spec!r}: no such directory or file (nor a hub id org/name[@revision])")
    if path.is_file() and path.suffix == ".gguf":
        from selftaught.models import gguf

        return str(gguf.ensure(path))
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"model {spec!r}: directory has no config.json, so it is not an HF model directory")
    return str(path)


def is_hub_id(spec: str) -> bool:
    """Is ``spec`` spelled like a hub id (``org/name[@revision]``)? Existing local paths are checked first."""
    return bool(HUB_ID.match(spec)) and not spec.endswith(".gguf")


def _fetch_hint(repo: str, rev: str | None) -> str:
    at = f" --revision {rev}" if rev else ""
    return (f"fetch it once where there is network: `hf download {repo}{at}` (older huggingface_hub: "
            f"`huggingface-cli download {repo}{at}`), with the same HF_HOME")


def from_hub(spec: str) -> str:
    """The cache snapshot directory of hub id ``org/name[@revision]``, downloaded if
    missing and allowed (``huggingface_hub.snapshot_download``; offline it is the cache only)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    repo, _, rev = spec.partition("@")
    where = f"model {spec!r}: not a local path, and as a Hugging Face hub id"
    try:
        path = Path(snapshot_download(repo, revision=rev or None, ignore_patterns=NOT_NEEDED))
    except LocalEntryNotFoundError as e:
        why = ("HF_HUB_OFFLINE is set, so it cannot be downloaded" if constants.HF_HUB_OFFLINE
               else f"the Hub could not be reached ({type(e.__cause__ or e).__name__})")
        raise FileNotFoundError(f"{where} it is not in the cache ({constants.HF_HUB_CACHE}) and {why}; "
                                f"{_fetch_hint(repo, rev)}") from None
    except RevisionNotFoundError:
        raise FileNotFoundError(f"{where}: {repo} has no revision {rev!r} (a branch, tag or commit)") from None
    except (RepositoryNotFoundError, GatedRepoError) as e:
        raise FileNotFoundError(f"{where}: the Hub has no such model, or it is private or gated "
                                f"({type(e).__name__}): accept its terms and log in (`hf auth login`) or set HF_TOKEN") from None
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{where}: its snapshot {path} has no config.json, so it is not a transformers model")
    _revisions[spec] = path.name  # snapshots/<commit>
    return str(path)


def hub_revision(spec: str) -> str | None:
    """The commit hash a hub-id ``model:`` resolves to (None for local dirs, .gguf, builtin:),
    recorded in the run's provenance next to the checkpoint hash."""
    if spec.startswith("builtin:") or Path(spec).expanduser().exists() or not is_hub_id(spec):
        return None
    if spec not in _revisions:
        from_hub(spec)
    return _revisions[spec]


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


def load_kwargs(for_training: bool = False) -> dict:
    """``from_pretrained`` keywords that follow the run's hardware (float32 on a CPU:
    bf16 is slower than fp32 on CPUs without AMX)."""
    import torch

    from selftaught import hardware

    return {"dtype": getattr(torch, hardware.resolved().load_dtype(for_training))}


def load_pretrained(path: str, for_training: bool = False):
    """(model, tokenizer) in the run's dtype. A model to sample from or score with is
    moved to the run's device; a model to train stays on the CPU and the Trainer
    places it (one GPU, this process's GPU under DDP, or FSDP/DeepSpeed shards --
    moving a full copy to every GPU first would only waste memory)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selftaught import hardware

    quiet_hf()
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, **load_kwargs(for_training))
    if not for_training:
        model.to(hardware.resolved().torch_device())
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
