"""The monitor stage: collapse metrics of one iteration, on its own samples
(``collapse/gen/...``), on its held-out outputs (``collapse/eval/...``) and, for
the model it ended with, perplexity on natural data (``collapse/natural_ppl``).

Which texts: the iteration's *unhinted* samples (a hinted rationalization says
more about the hint than about the model); on held-out, the pass@k samples when
``eval.pass_k > 0`` (several per problem, so answer entropy is defined), else
the greedy answers. Pairwise metrics use a fixed random subset of at most
``gate.max_texts`` texts. See ``diversity.py`` for each metric.
"""

from __future__ import annotations

from collections import defaultdict

from selftaught.monitor import diversity as d


def unit_for(task, unit: str = "auto") -> str:
    """chars for character-level tasks (they declare an ``alphabet``), else words."""
    if unit != "auto":
        return unit
    return "chars" if task.alphabet else "words"


def text_metrics(rows: list[dict], unit: str, max_texts: int | None, seed: int, embeddings: bool = False) -> dict:
    """Diversity of the completions of ``rows`` (each with completion, problem_id, answer)."""
    texts = [r["completion"] or "" for r in rows]
    if not texts:
        return {}
    answers: dict[str, list] = defaultdict(list)
    for r in rows:
        answers[r["problem_id"]].append(r.get("answer"))
    few = d.subsample(texts, max_texts, seed)
    out = {
        "ttr": d.type_token_ratio(texts, unit), "distinct_1": d.distinct_n(texts, 1, unit),
        "distinct_2": d.distinct_n(texts, 2, unit), "distinct_3": d.distinct_n(texts, 3, unit),
        "self_bleu": d.self_bleu(few, 4, unit), "repetition": d.repetition_rate(few, 3, unit),
        "answer_entropy": d.answer_entropy(answers), "mean_length": d.mean_length(texts, unit),
        "texts": len(texts),
    }
    if embeddings:
        out["embedding_diversity"] = d.embedding_diversity(few)
    return {k: round(v, 6) for k, v in out.items() if v is not None}


def measure(it, samples: list[dict] | None, eval_rows: list[dict]) -> dict:
    """``collapse/`` metrics of iteration ``it`` (``it.model`` is the model it ended with)."""
    from selftaught.monitor.perplexity import natural_perplexity

    g = it.cfg.gate
    unit = unit_for(it.task, g.ngram_unit)
    seed = it.seed("monitor")
    out = {"collapse/unit": unit}
    if samples:
        own = [r for r in samples if not r.get("hint") and not str(r.get("phase", "")).startswith("eval")
               and not r.get("rollout_of")]  # a forced-prefix rollout (verifiers/prm.py) repeats its prefix
        out.update({f"collapse/gen/{k}": v for k, v in text_metrics(own, unit, g.max_texts, seed,
                                                                  g.embedding_diversity).items()})
    sampled = [r for r in eval_rows if r.get("phase") == "eval_k"]
    held = sampled or [r for r in eval_rows if r.get("phase") == "eval"]
    out.update({f"collapse/eval/{k}": v for k, v in text_metrics(held, unit, g.max_texts, seed,
                                                               g.embedding_diversity).items()})
    from selftaught.monitor import overopt  # a learned scorer selects: proxy, gold and KL to the start

    out.update(overopt.measure(it, eval_rows))
    if g.natural_ppl_examples > 0:
        ppl = natural_perplexity(it.model, it.task, g.natural_ppl_examples, it.cfg.seed)
        if ppl is not None:
            out["collapse/natural_ppl"] = round(ppl, 6)
    return out
