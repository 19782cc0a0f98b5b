"""Natural-data perplexity: exact on a model with known output, and with the task's positions."""

import math

import pytest

from selftaught.monitor import perplexity as ppl
from selftaught.tasks.arithmetic import Config, Positions, build
from tiny_llama import save_tiny_llama  # tests/unit/tiny_llama.py


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, save_tiny_llama(out)


def _manual(model_dir, prompt, completion, tracker):
    """log-likelihood of the completion (+eos), token by token, from one full forward pass."""
    import torch

    from selftaught.models.loading import load_pretrained

    model, tok = load_pretrained(str(model_dir))
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    ids = p + c
    t = tracker() if tracker else None
    pos = [t.feed(x) for x in tok.convert_ids_to_tokens(ids)] if t else list(range(len(ids)))
    with torch.inference_mode():
        logp = model(input_ids=torch.tensor([ids]), position_ids=torch.tensor([pos])).logits[0].log_softmax(-1)
    return sum(-logp[len(p) + i - 1, c[i]].item() for i in range(len(c))), len(c)


def test_uniform_model_has_perplexity_vocab_size(tiny_dir, tmp_path):
    import torch

    from selftaught.models.loading import load_pretrained

    src, vocab = tiny_dir
    model, tok = load_pretrained(str(src))
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: uniform over the vocabulary
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    pairs = [("12+34\n", "1+3+0=4,0\n=46"), ("5+5\n", "5+5+0=0,1\n=01")]
    assert ppl.perplexity(str(tmp_path), pairs, Positions) == pytest.approx(vocab, rel=1e-4)


def test_matches_manual_completion_only_nll_with_coupled_positions(tiny_dir):
    src, _ = tiny_dir
    pairs = [("12+34\n", "1+3+0=4,0\n2+4+0=6,0\n=46"), ("5+5\n", "5+5+0=0,1\n=01")]  # different lengths: padding
    nll, n = 0.0, 0
    for p, c in pairs:
        a, b = _manual(src, p, c, Positions)
        nll, n = nll + a, n + b
    got = ppl.perplexity(str(src), pairs, Positions, batch_size=2)
    assert got == pytest.approx(math.exp(nll / n), rel=1e-5)
    plain = ppl.perplexity(str(src), pairs, None)
    nll0 = sum(_manual(src, p, c, None)[0] for p, c in pairs)
    assert plain == pytest.approx(math.exp(nll0 / n), rel=1e-5)
    assert abs(plain - got) > 1e-6  # positions really are used


def test_natural_set_is_labeled_fixed_and_never_held_out():
    task = build(Config(seed_size=60, pool_size=30, eval_per_group=5, eval_digits=(1, 3)))
    problems = ppl.natural_problems(task)
    assert problems and all(p.rationale for p in problems)
    assert not {p.id for p in problems} & {p.id for p in task.eval_set()}
    a, b = ppl.fixed_set(problems, 10, seed=0), ppl.fixed_set(list(reversed(problems)), 10, seed=0)
    assert len(a) == 10 and [p.id for p in a] == sorted(p.id for p in a)
    assert [p.id for p in a] == [p.id for p in b]  # the input order does not matter
    assert [p.id for p in a] != [p.id for p in ppl.fixed_set(problems, 10, seed=1)]
