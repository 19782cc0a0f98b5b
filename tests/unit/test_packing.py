"""Packed training batches (trainers/_packing.py) give the padded batches' loss and
gradients, with the task's coupled positions, and the trainer's packing option
keeps the padded path as it was."""

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from selftaught.tasks.arithmetic import Arithmetic, Config as TaskConfig  # noqa: E402
from selftaught.trainers._packing import PackingCollator, PositionTable, block_causal_mask, pack_rows  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return Arithmetic(TaskConfig(seed_size=60, pool_size=60))


@pytest.fixture(scope="module")
def tok(task):
    from selftaught.models.tiny import build_tokenizer

    return build_tokenizer(task.alphabet)


@pytest.fixture(scope="module")
def model(task):
    from selftaught.models.tiny import _init_model

    m = _init_model(task, seed=0)
    m.eval()  # no dropout: both layouts must see the same function
    return m


def _examples(task, tok, n=24, seed=0):
    """TRL-prepared rows: prompt then completion token ids, prompt labels -100."""
    problems = task.seed_set()
    rng = random.Random(seed)
    out = []
    for p in rng.sample(problems, n):
        prompt, completion = task.prompt(p, hint=rng.random() < 0.5), p.rationale
        pi, ci = tok(prompt)["input_ids"], tok(completion)["input_ids"] + [tok.eos_token_id]
        out.append({"input_ids": pi + ci, "labels": [-100] * len(pi) + ci})
    return out


def _padded(examples, positions):
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from selftaught.trainers.sft import PositionCollator

    base = DataCollatorForLanguageModeling(pad_token_id=0)
    return PositionCollator(base, positions)(examples)


def _loss(model, batch):
    """Sum of next-token NLL over labelled tokens / their count: the trainer's loss."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   position_ids=batch["position_ids"]).logits
    return _mean_nll(logits, batch["labels"])


def _mean_nll(logits, labels):
    labels = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                            ignore_index=-100, reduction="sum")
    return nll / (labels != -100).sum()


def test_positions_are_the_trackers_computed_once(task, tok):
    table = PositionTable(tok, task.position_tracker)
    ex = _examples(task, tok, n=1)[0]["input_ids"]
    tracker = task.position_tracker()
    want = [tracker.feed(t) for t in tok.convert_ids_to_tokens(ex)]
    assert table(ex).tolist() == want
    assert table(list(ex)) is table(ex)  # cached: the second step does not walk the tokens again
    assert PositionTable(tok, None)(ex).tolist() == list(range(len(ex)))


def test_pack_rows_fits_every_example_once():
    lengths = [50, 30, 70, 20, 100, 10, 60]
    rows = pack_rows(lengths, 128)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 128 for r in rows)
    assert len(rows) == 3  # 340 tokens: first-fit decreasing needs the minimum, 3 rows


def test_mask_is_block_diagonal_and_causal():
    seg = torch.tensor([[0, 0, 1, 1, 1, -1]])
    m = block_causal_mask(seg)[0, 0]
    assert m[3].tolist() == [False, False, True, True, False, False]  # sees its own example, up to itself
    assert m[5].tolist() == [False] * 5 + [True]  # a pad sees only pads: no all-masked row (NaN)
    add = block_causal_mask(seg, torch.float32)[0, 0]
    assert (add == 0).equal(m) and add.min() == torch.finfo(torch.float32).min


@pytest.mark.parametrize("attn_tokens", [1, 512, 1e9])  # rows of the longest example .. one row for all
def test_packed_loss_and_grads_equal_padded(task, tok, model, attn_tokens):
    examples = _examples(task, tok)
    positions = PositionTable(tok, task.position_tracker)
    padded = _padded(examples, positions)
    packed = PackingCollator(0, positions, attn_tokens=attn_tokens)(examples)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    assert int((packed["labels"] != -100).sum()) == int((padded["labels"][:, 1:] != -100).sum())
    model.zero_grad()
    a = _loss(model, padded)
    a.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    b = _loss(model, packed)
    b.backward()
    assert abs(a.item() - b.item()) < 1e-5
    for g, p in zip(grads, model.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-5, rtol=1e-4)


def test_packed_loss_equals_padded_with_ordinary_positions(task, tok, model):
    examples = _examples(task, tok, seed=1)
    positions = PositionTable(tok, None)
    padded = _padded(examples, positions)
    packed = PackingCollator(0, positions)(examples)
    with torch.no_grad():
        assert abs(_loss(model, padded).item() - _loss(model, packed).item()) < 1e-5


def test_eager_attention_takes_the_additive_mask(task, tok):
    from selftaught.models.tiny import _init_model
    from selftaught.trainers._packing import mask_dtype_for

    m = _init_model(task, seed=0)
    m.config._attn_implementation = "eager"
    m.eval()
    examples, positions = _examples(task, tok, seed=2), PositionTable(tok, task.position_tracker)
    packed = PackingCollator(0, positions, mask_dtype=mask_dtype_for(m))(examples)
    assert packed["attention_mask"].dtype == torch.float32
    with torch.no_grad():
        assert abs(_loss(m, _padded(examples, positions)).item() - _loss(m, packed).item()) < 1e-5


def test_trainer_packed_and_padded_take_the_same_steps(task, tok, tmp_path):
    """Through TRL: the same batches in the same order, so the first step's loss is the
    padded one, and the weights after a few steps agree to float rounding."""
    from selftaught.models.loading import load_pretrained
    from selftaught.models.tiny import _init_model
    from selftaught.trainers.sft import SFT, Config

    init = tmp_path / "init"
    _init_model(task, seed=0).save_pretrained(init)
    tok.save_pretrained(init)
    rows = [{"prompt": task.prompt(p), "completion": p.rationale} for p in task.seed_set()[:48]]
    out = {}
    for packing in (False, True):
        cfg = Config(lr=2e-3, batch_size=16, warmup_ratio=0.0, packing=packing)
        m = SFT(cfg).train(str(init), rows, str(tmp_path / f"p{packing}"), steps=3, seed=0,
                           position_tracker=task.position_tracker)
        out[packing] = (m, load_pretrained(str(tmp_path / f"p{packing}"))[0].state_dict())
    assert abs(out[False][0]["train/first_loss"] - out[True][0]["train/first_loss"]) < 1e-5
    start = load_pretrained(str(init))[0].state_dict()
    assert any(not np.allclose(w.numpy(), start[k].numpy(), atol=1e-3) for k, w in out[True][1].items())  # it trained
    for k, w in out[False][1].items():
        assert np.allclose(w.numpy(), out[True][1][k].numpy(), atol=1e-4), k
    assert "selftaught_packed" not in (tmp_path / "pTrue" / "config.json").read_text()  # its own attention again


def test_trainers_freeze_the_objects_alive_once_so_collections_skip_them():
    import gc

    from selftaught.trainers import freeze_imports

    freeze_imports()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    later = [[i] for i in range(1000)]  # made after the first freeze
    freeze_imports()
    assert gc.get_freeze_count() == frozen and later  # once per process: what came later stays collectable


# Flat batches: one row of exactly the batch's tokens, attention per example (packed_attention).

def _flat_loss(model, examples, positions):
    from selftaught.trainers._packing import FlatCollator

    batch = FlatCollator(positions)(examples)
    assert batch["input_ids"].shape == (1, sum(len(ex["input_ids"]) for ex in examples))  # no padding at all
    logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                   packed_plan=batch["packed_plan"]).logits
    return _mean_nll(logits, batch["labels"])


def _routed(model):
    from selftaught.trainers._packing import use_flat_attention

    before = use_flat_attention(model)
    assert model.config._attn_implementation == "selftaught_packed"
    return before


@pytest.mark.parametrize("coupled", [True, False])
def test_flat_loss_and_grads_equal_padded(task, tok, coupled):
    from selftaught.models.tiny import _init_model

    m = _init_model(task, seed=0)
    m.eval()
    examples = _examples(task, tok, n=40, seed=3)
    positions = PositionTable(tok, task.position_tracker if coupled else None)
    m.zero_grad()
    a = _loss(m, _padded(examples, positions))
    a.backward()
    grads = [p.grad.clone() for p in m.parameters()]
    _routed(m)
    m.zero_grad()
    b = _flat_loss(m, examples, positions)
    b.backward()
    assert abs(a.item() - b.item()) < 1e-5
    for g, p in zip(grads, m.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-5, rtol=1e-4)
    # while routed, an ordinary padded forward (no plan) still gets its padding mask
    with torch.no_grad():
        assert abs(_loss(m, _padded(examples, positions)).item() - a.item()) < 1e-5


@pytest.mark.parametrize("kind", ["gqa", "sliding_window"])
def test_flat_loss_equals_padded_with_grouped_kv_heads_and_a_sliding_window(task, tok, kind):
    """SmolLM2-like grouped KV heads; a Mistral-style window shorter than the examples."""
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    torch.manual_seed(0)
    arch = dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, pad_token_id=0, max_position_embeddings=4096)
    if kind == "gqa":
        m = LlamaForCausalLM(LlamaConfig(**arch))
    else:
        m = MistralForCausalLM(MistralConfig(**arch, sliding_window=9))
    m.config._attn_implementation = "sdpa"
    m.eval()
    examples, positions = _examples(task, tok, n=20, seed=4), PositionTable(tok, None)
    assert min(len(ex["input_ids"]) for ex in examples) > 9
    with torch.no_grad():
        a = _loss(m, _padded(examples, positions)).item()
        _routed(m)
        b = _flat_loss(m, examples, positions).item()
    assert abs(a - b) < 1e-5


def test_plan_groups_examples_by_length_and_returns_every_token_once():
    from selftaught.trainers._packing import FlatPlan, _bucket

    lengths = [5, 17, 40, 16, 106, 33, 300]
    plan = FlatPlan(lengths)
    assert [L for _, _, L in plan.groups] == sorted({_bucket(n) for n in lengths})
    assert all(_bucket(n) >= n and _bucket(n) < n * 1.15 + 16 for n in range(1, 2000))
    assert all(idx.numel() == n * L for idx, n, L in plan.groups)
    laid = torch.cat([idx for idx, _, _ in plan.groups])
    assert laid[plan.back].tolist() == list(range(sum(lengths)))  # back undoes the grouping


def test_models_outside_the_attention_interface_keep_the_4d_mask(task, tok, monkeypatch):
    from selftaught.models.tiny import _init_model
    from selftaught.trainers import _packing as pk
    from selftaught.trainers.sft import Config, _collator

    m = _init_model(task, seed=0)
    assert isinstance(_collator(Config(), m, tok, task.position_tracker), pk.FlatCollator)
    monkeypatch.setattr(type(m), "_supports_attention_backend", False)
    assert isinstance(_collator(Config(), m, tok, task.position_tracker), pk.PackingCollator)


def test_softcapped_attention_is_refused_not_approximated():
    from selftaught.trainers._packing import FlatPlan, packed_attention

    q = torch.zeros(1, 2, 6, 4)
    with pytest.raises(ValueError, match="softcap.*packing=false"):
        packed_attention(torch.nn.Module(), q, q, q, None, packed_plan=FlatPlan([3, 3]), softcap=30.0)
