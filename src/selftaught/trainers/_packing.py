"""Training without padding: the examples of one batch laid end to end in a few
rows, each example attending only to itself.

Why: the demo's rows are 54 tokens on average and 105 at most, so a batch padded
to its longest row is about half padding, and the trainer spends that half on
nothing. A step here sees exactly the examples the padded step sees (the batches
come from the same sampler in the same order): only the layout changes, so the
loss and its gradient are the padded ones up to float rounding
(``tests/unit/test_packing.py`` checks it).

Why not TRL's own ``packing=True`` / ``padding_free=True``: BFD packing packs the
whole dataset once, so a step no longer sees the batch the padded path sees (rows
are reordered and merged); padding-free mode refuses a custom collator; and both
find example boundaries where ``position_ids`` restart at 0 (transformers'
``find_packed_sequence_indices``, flash-attention varlen). The task's coupled
positions (arithmetic's ``Positions``) neither start at 0 nor grow by 1, so those
boundaries would be wrong. Here boundaries are explicit: a 4D block-diagonal
causal mask, which transformers hands to SDPA as is.

Row length, per batch: a dense mask makes attention cost ~L per token in a row of
L tokens, masked pairs included, so long rows waste attention; rows as short as
the longest example leave much padding at the row ends (two 60-token examples do
not share a 106-token row). ``choose_rows`` tries a few lengths and keeps the
cheapest under ``tokens x (1 + L / attn_tokens)``.
"""

from __future__ import annotations

import numpy as np


class PositionTable:
    """Position ids of an example, computed once per distinct example and reused on
    every later step. ``factory`` is the task's ``position_tracker`` (a class with
    ``feed(token) -> int``); None means ordinary positions ``0..n-1``."""

    def __init__(self, tokenizer, factory) -> None:
        self.factory, self.cache = factory, {}
        self.vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer)))) if factory else None

    def __call__(self, ids) -> np.ndarray:
        if self.factory is None:
            return np.arange(len(ids), dtype=np.int64)
        key = tuple(ids)
        pos = self.cache.get(key)
        if pos is None:
            tracker, vocab = self.factory(), self.vocab
            pos = self.cache[key] = np.fromiter((tracker.feed(vocab[i]) for i in key), np.int64, len(key))
        return pos


def pack_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: indices of ``lengths`` grouped into rows of at most
    ``capacity`` tokens (every length must fit). Deterministic: ties keep order."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows, free = [], []
    for i in order:
        for r, room in enumerate(free):
            if lengths[i] <= room:
                rows[r].append(i)
                free[r] -= lengths[i]
                break
        else:
            rows.append([i])
            free.append(capacity - lengths[i])
    return rows


def choose_rows(lengths: list[int], attn_tokens: float) -> tuple[int, list[list[int]]]:
    """(row length, rows) minimizing ``rows * L * (1 + L / attn_tokens)`` over L in
    1, 1.5, 2, ... 4 times the longest example (capped at one row for all)."""
    longest, total = max(lengths), sum(lengths)
    best = None
    for L in sorted({min(total, longest * k // 2) for k in range(2, 9)}):
        rows = pack_rows(lengths, L)
        cost = len(rows) * L * (1 + L / attn_tokens)
        if best is None or cost < best[0]:
            best = (cost, L, rows)
    return best[1], best[2]


def block_causal_mask(segments, dtype=None):
    """``segments`` [rows, L] (one id per example, pads their own id) to a 4D mask
    [rows, 1, L, L]: a token sees earlier tokens of its own example only. Boolean
    (True = attend) for SDPA; with ``dtype``, additive (0 / min) for eager attention."""
    import torch

    L = segments.shape[1]
    causal = torch.ones(L, L, dtype=torch.bool).tril_()
    mask = (segments[:, :, None] == segments[:, None, :]) & causal
    mask = mask[:, None]
    if dtype is None:
        return mask
    return torch.zeros(mask.shape, dtype=dtype).masked_fill_(~mask, torch.finfo(dtype).min)


class PackingCollator:
    """Collates TRL-prepared examples (``input_ids``, ``labels``) into packed rows with
    ``input_ids``, ``labels``, ``position_ids`` and a block-diagonal ``attention_mask``.

    The first label of every example is dropped (-100): packed, it would be
    predicted from the previous example's last token; padded, no token predicts it.
    Row-end padding carries label -100, and pad tokens attend only to pad tokens
    (a row of nothing but -inf would give NaN)."""

    def __init__(self, pad_token_id: int, positions: PositionTable, attn_tokens: float = 512,
                 mask_dtype=None) -> None:
        self.pad, self.positions, self.attn_tokens, self.mask_dtype = pad_token_id, positions, attn_tokens, mask_dtype

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        ids = [np.asarray(ex["input_ids"], dtype=np.int64) for ex in examples]
        labels = [np.asarray(ex.get("labels", ex["input_ids"]), dtype=np.int64) for ex in examples]
        lengths = [len(x) for x in ids]
        L, rows = choose_rows(lengths, self.attn_tokens)
        shape = (len(rows), L)
        out_ids, out_labels = np.full(shape, self.pad, np.int64), np.full(shape, -100, np.int64)
        out_pos, seg = np.zeros(shape, np.int64), np.full(shape, -1, np.int64)
        for r, members in enumerate(rows):
            at = 0
            for i in members:
                n = lengths[i]
                out_ids[r, at:at + n], out_labels[r, at:at + n] = ids[i], labels[i]
                out_labels[r, at] = -100
                out_pos[r, at:at + n], seg[r, at:at + n] = self.positions(examples[i]["input_ids"]), i
                at += n
        seg = torch.from_numpy(seg)
        return {"input_ids": torch.from_numpy(out_ids), "labels": torch.from_numpy(out_labels),
                "position_ids": torch.from_numpy(out_pos), "attention_mask": block_causal_mask(seg, self.mask_dtype)}


def attn_tokens_for(model) -> float:
    """The row length at which attention costs as much as the rest of a layer, per
    token: ~4 x hidden size, measured on the tiny model (benchmarks/sft_speed.py);
    counting flops alone gives ~6.5 x for Llama-shaped layers, but SDPA with a mask
    runs below the matmul peak."""
    return 4.0 * model.config.get_text_config().hidden_size


def mask_dtype_for(model):
    """None (boolean mask) for SDPA; the model's float dtype (additive mask) for eager
    attention, which adds the mask to the scores. Flash-attention kernels take no 4D
    mask: packing is refused there rather than silently attending across examples."""
    impl = getattr(model.config, "_attn_implementation", "sdpa") or "sdpa"
    if impl == "sdpa":
        return None
    if impl == "eager":
        return model.dtype
    raise ValueError(f"sft: packing needs sdpa or eager attention, the model uses {impl!r}; set trainer.packing=false")
