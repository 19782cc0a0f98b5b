"""The ``hf`` backend's lean decoder and continuous batching: exact logits, greedy
equal to ``generate``, the sampling distribution, determinism, refill, stop strings."""

import math

import pytest
import torch

from selftaught.backends import _batching, _llama, hf
from selftaught.models.tiny import build_tokenizer
from selftaught.tasks.arithmetic import ALPHABET, Positions

ARCHS = {
    "llama": dict(num_attention_heads=4, num_key_value_heads=2),  # GQA
    "qwen2": dict(num_attention_heads=4, num_key_value_heads=4),  # QKV biases
}


def _model(arch="llama", scale=0.02, seed=0):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    vocab = len(build_tokenizer(ALPHABET))
    cfg = AutoConfig.for_model(arch, vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                               max_position_embeddings=512, initializer_range=scale, pad_token_id=0, eos_token_id=1,
                               bos_token_id=None, tie_word_embeddings=arch == "llama", **ARCHS[arch])
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).eval()
    return model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A random tiny Llama with the built-in char tokenizer, peaked enough to say something."""
    d = tmp_path_factory.mktemp("tiny")
    _model(scale=0.3).save_pretrained(d)
    build_tokenizer(ALPHABET).save_pretrained(d)
    return str(d)


def _backend(model_dir, tracker=None, **cfg):
    b = hf.build(hf.Config(**cfg))
    b.load(model_dir, tracker)
    return b


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("custom_positions", [False, True])
@pytest.mark.parametrize("onednn", [True, False])  # False: the F.linear products a GPU uses
def test_lean_logits_equal_hf_logits(arch, custom_positions, onednn):
    model = _model(arch, scale=0.2)
    assert _llama.supports(model)
    if onednn and not _llama.use_onednn(model):
        pytest.skip("this torch has no oneDNN")
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, model.config.vocab_size, (3, 9), generator=g)
    pos = (torch.randint(0, 300, (3, 9), generator=g) if custom_positions
           else torch.arange(9).expand(3, 9))
    with torch.inference_mode():
        want = model(input_ids=ids, position_ids=pos).logits
        lean = _llama.LeanLlama(model, onednn=onednn)
        lean.new_cache(5, 16)
        slots, src = torch.tensor([4, 0, 2]), torch.tensor([0, 1, 2])  # any slot order
        got = [lean.prefill(ids[:, :5], pos[:, :5], torch.full((3,), 4), slots, src)]
        back = torch.argsort(slots)  # rows of step() are slots 0..hi-1
        lens = torch.full((5,), 5)
        for t in range(5, 9):
            tok = torch.zeros(5, dtype=torch.long)
            p = torch.zeros(5, dtype=torch.long)
            tok[slots], p[slots] = ids[:, t], pos[:, t]
            got.append(lean.step(tok, p, lens, 5)[slots])
            lens += 1
    assert back.numel() == 3
    for t, logits in zip(range(4, 9), got):
        assert torch.allclose(logits, want[:, t], atol=1e-5, rtol=1e-5), f"logits differ at token {t}"


@pytest.mark.parametrize("custom_positions", [False, True])
def test_greedy_equals_reference(model_dir, custom_positions):
    """Greedy rows equal HF ``generate`` (ordinary positions) or the HF-forward path
    (position coupling, which ``generate`` cannot do)."""
    prompts = ["12+345\n", "9+9\n", "1234567+7654321\n", "5+", "0\n"]
    tracker = Positions if custom_positions else None
    fast = _backend(model_dir, tracker, batch_size=3)
    got = fast.sample(prompts, 1, temperature=0.0, max_new_tokens=24, seed=0)
    if custom_positions:
        want = _backend(model_dir, tracker, lean=False).sample(prompts, 1, temperature=0.0, max_new_tokens=24, seed=0)
    else:
        want = []
        for p in prompts:
            ids = fast.tok(p, add_special_tokens=False, return_tensors="pt")["input_ids"]
            seq = fast.model.generate(ids, do_sample=False, max_new_tokens=24, eos_token_id=1, pad_token_id=0)
            want.append([fast.tok.decode(seq[0, ids.shape[1]:], skip_special_tokens=True)])
    assert fast.lean is not None
    assert got == want
    assert len({g[0] for g in got}) > 1  # the reference says something non-trivial


def _chi2_bound(df: int, z: float = 3.3) -> float:
    """~0.9995 quantile of chi-square (Wilson-Hilferty)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (2.0, 0.9)])
def test_first_token_distribution(model_dir, temperature, top_p):
    b = _backend(model_dir, batch_size=512)
    prompt = "31+42\n"
    n = 6000
    texts = b.sample([prompt], n, temperature=temperature, top_p=top_p, max_new_tokens=1, seed=3)[0]
    ids = b.tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        probs = torch.softmax(b.model(ids).logits[0, -1] / temperature, -1)
    sp, order = probs.sort(descending=True)
    keep = order[(sp.cumsum(0) - sp) <= top_p]  # the nucleus
    p = torch.zeros_like(probs)
    p[keep] = probs[keep] / probs[keep].sum()
    p[1], p[0] = p[0] + p[1], 0.0  # <pad> (0) and <eos> (1) both decode to ""
    counts = torch.zeros_like(probs)
    for t in texts:
        counts[b.tok.convert_tokens_to_ids(t) if t else 1] += 1  # "" is EOS
    assert counts[p == 0].sum() == 0, "sampled outside the nucleus"
    expected = p * n
    big = expected >= 5
    chi2 = float((((counts - expected) ** 2)[big] / expected[big]).sum())
    assert big.sum() >= 5
    assert chi2 < _chi2_bound(int(big.sum()) - 1), f"chi2 {chi2:.1f} over {int(big.sum())} tokens"


def test_deterministic_batch_invariant_and_shardable(model_dir):
    prompts = ["12+345\n", "9+9\n", "1234567+7654321\n", "5+", "0\n", "77+1\n"]
    kw = dict(temperature=1.0, max_new_tokens=20, seed=11)
    big = _backend(model_dir, batch_size=64)
    a = big.sample(prompts, 3, **kw)
    assert a == big.sample(prompts, 3, **kw)
    assert a != big.sample(prompts, 3, **{**kw, "seed": 12})
    assert len({s for row in a for s in row}) > len(prompts)  # samples of one prompt differ
    # refill: 2 slots for 18 rows gives the same rows as 18 slots
    assert _backend(model_dir, batch_size=2).sample(prompts, 3, **kw) == a
    # a shard with its global offset draws what the whole call drew
    assert big.sample(prompts[2:5], 3, index_offset=2, **kw) == a[2:5]


@pytest.mark.parametrize("tracker", [None, Positions])
def test_growing_cache_decodes_as_one_full_cache(model_dir, monkeypatch, tracker):
    """The KV cache starts short and doubles as rows outgrow it (for every slot while
    rows are queued, for the live ones after): greedy rows still equal the HF-forward
    path, and sampled rows still do not depend on batch size."""
    prompts = ["12+345\n", "9+9\n", "1234567+7654321\n", "5+", "0\n"]
    grown = []
    grow = _llama.LeanLlama.grow_cache
    monkeypatch.setattr(_llama.LeanLlama, "grow_cache", lambda self, rows, n: grown.append(rows) or grow(self, rows, n))
    monkeypatch.setattr(_batching, "FIRST_NEW", 2)
    ref = _backend(model_dir, tracker, lean=False).sample(prompts, 1, temperature=0.0, max_new_tokens=40, seed=0)
    assert _backend(model_dir, tracker, batch_size=2).sample(prompts, 1, temperature=0.0, max_new_tokens=40, seed=0) == ref
    kw = dict(temperature=1.0, max_new_tokens=40, seed=4)
    many = _backend(model_dir, tracker, batch_size=64).sample(prompts, 3, **kw)
    assert _backend(model_dir, tracker, batch_size=4).sample(prompts, 3, **kw) == many
    assert 2 in grown and 4 in grown and min(grown) < 4  # grown for all slots, and for the live ones only


def test_tracker_rows_refill_like_one_batch(model_dir):
    prompts = ["12+345\n", "9+9\n", "1234567+7654321\n", "0+0\n"]
    kw = dict(temperature=0.8, max_new_tokens=30, seed=5)
    one = _backend(model_dir, Positions, batch_size=64).sample(prompts, 4, **kw)
    assert _backend(model_dir, Positions, batch_size=3).sample(prompts, 4, **kw) == one


def test_stop_strings_end_and_cut(model_dir):
    prompts = ["12+345\n", "9+9\n", "1234567+7654321\n", "5+", "0\n"]
    kw = dict(temperature=1.0, max_new_tokens=30, seed=2)
    plain = _backend(model_dir).sample(prompts, 4, **kw)
    stopped = _backend(model_dir, stop=["+", "=0"]).sample(prompts, 4, **kw)
    cut = 0
    for prow, srow in zip(plain, stopped):
        for p, s in zip(prow, srow):
            i = min([p.find(x) for x in ("+", "=0") if x in p], default=len(p))
            assert s == p[:i]
            cut += i < len(p)
    assert cut > 0  # some row really stopped early


def test_uniforms_are_uniform_and_keyed():
    keys = torch.tensor([_batching.row_key(0, i, 0) for i in range(20000)])
    u = _batching.uniforms(keys, torch.zeros_like(keys))
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    hist = torch.histc(u.float(), bins=10, min=0, max=1)
    assert float((hist - 2000).abs().max()) < 200
    assert not torch.equal(u, _batching.uniforms(keys, torch.ones_like(keys)))


def test_kv_cache_goes_under_the_name_forward_takes():
    # transformers 5.24 renamed forward's `past_key_values` to `cache` (the old name warns,
    # removal announced for 5.40); releases the pin allows before that know only the old name
    class Old(torch.nn.Module):
        def forward(self, input_ids=None, past_key_values=None, use_cache=None):
            return None

    class New(torch.nn.Module):
        def forward(self, input_ids=None, cache=None, use_cache=None):
            return None

    assert hf._cache_kwarg(Old()) == "past_key_values" and hf._cache_kwarg(New()) == "cache"


def test_a_sampling_model_alive_at_the_trainers_gc_freeze_is_still_freed_when_replaced(model_dir, tmp_path):
    import gc
    import os
    import weakref

    b = _backend(model_dir, Positions)
    b.sample(["12+34\n"], 1, temperature=0.0, max_new_tokens=4, seed=0)
    old = weakref.ref(b.model)
    gc.collect()
    gc.freeze()  # what trainers.freeze_imports does at the first train stage, with iteration 1's sampling model alive
    assert gc.is_tracked(b.model)
    os.symlink(model_dir, tmp_path / "next")  # another checkpoint path: the backend loads anew
    b.load(str(tmp_path / "next"), Positions)
    assert old() is None  # refcounting freed it: no reference cycle keeps a frozen model (and its memory) alive
