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

Flat batches (the default where the model routes attention through transformers'
``AttentionInterface``, as Llama, Qwen, Mistral, Gemma do): the whole batch is one
row of exactly its tokens, so the layers' products see no padding at all, and
attention is computed apart (``packed_attention``): the examples are grouped by
length, each group a dense causal SDPA call, so no pair across examples or above
the diagonal is computed. On the demo's rows the 4D-mask layout above still had
12% padding at the row ends and computed 1.9x the attention pairs needed; the
4D mask is the fallback for models that do not use the interface.
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


ATTENTION = "selftaught_packed"  # the name packed_attention is registered under (transformers' AttentionInterface)


def _bucket(n: int) -> int:
    """Length of the attention group of an n-token example: n rounded up to a step of
    1/8 of its power of two (at least 16), so a group wastes at most ~12% of its rows."""
    step = max(16, 1 << max(0, n.bit_length() - 4))
    return -(-n // step) * step


class FlatPlan:
    """Where each example of a flat batch lies, grouped for attention: per group of
    length ``Lb``, the flat indices of its examples' tokens laid out [n, Lb] (an
    example shorter than Lb is filled with index 0: those pad slots come after its
    own tokens, which causal attention never lets them see, and their outputs are
    dropped), and where each real token's output sits in the groups' outputs.

    Passed to the model as a keyword argument (``packed_plan``); transformers hands
    extra forward kwargs to the attention function. ``to`` moves it with the batch
    (accelerate's ``send_to_device`` calls it)."""

    def __init__(self, lengths: list[int], groups=None, back=None) -> None:
        import torch

        self.lengths = lengths
        if groups is None:
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            by = {}
            for i, n in enumerate(lengths):
                by.setdefault(_bucket(n), []).append(i)
            groups, back, at = [], np.zeros(sum(lengths), np.int64), 0
            for Lb in sorted(by):
                members = by[Lb]
                idx = np.zeros((len(members), Lb), np.int64)
                for r, i in enumerate(members):
                    n, s = lengths[i], starts[i]
                    idx[r, :n] = np.arange(s, s + n)
                    back[s:s + n] = at + r * Lb + np.arange(n)
                groups.append((torch.from_numpy(idx.reshape(-1)), len(members), Lb))
                at += len(members) * Lb
            back = torch.from_numpy(back)
        self.groups, self.back = groups, back

    def to(self, device, non_blocking: bool = False) -> "FlatPlan":
        return FlatPlan(self.lengths, [(i.to(device, non_blocking=non_blocking), n, L) for i, n, L in self.groups],
                        self.back.to(device, non_blocking=non_blocking))


def packed_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                     packed_plan: FlatPlan | None = None, sliding_window=None, **kwargs):
    """Attention over a flat batch [1, heads, T, D]: every example attends causally
    to itself only. Same signature and output layout ([1, T, heads, D], None) as
    transformers' ``sdpa_attention_forward``. Without a plan (any other forward of the
    model while it is routed here) it is transformers' SDPA with its usual mask."""
    import torch
    import torch.nn.functional as F

    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if packed_plan is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      sliding_window=sliding_window, **kwargs)
    for name in ("softcap", "position_bias", "s_aux"):
        if kwargs.get(name) is not None:
            raise ValueError(f"sft packing: this model's attention uses {name!r}, which packed attention does not "
                             "compute; set trainer.packing=false")
    if query.shape[0] != 1:
        raise ValueError(f"packed attention expects one flat row, got a batch of {query.shape[0]}")
    H, Hkv, D = query.shape[1], key.shape[1], query.shape[3]
    q, k, v = (t[0].transpose(0, 1) for t in (query, key, value))  # [T, heads, D]
    drop = dropout if module.training else 0.0
    outs = []
    for idx, n, Lb in packed_plan.groups:
        qg, kg, vg = (t.index_select(0, idx).view(n, Lb, t.shape[1], D).transpose(1, 2) for t in (q, k, v))
        mask, causal = None, True
        if sliding_window is not None and Lb > sliding_window:  # HF's rule: a query sees kv_idx > q_idx - window
            i = torch.arange(Lb, device=q.device)
            mask, causal = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - sliding_window), False
        og = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=mask, dropout_p=drop, is_causal=causal,
                                            scale=scaling, enable_gqa=H != Hkv)
        outs.append(og.transpose(1, 2).reshape(n * Lb, H, D))
    out = torch.cat(outs).index_select(0, packed_plan.back)  # [T, H, D], the flat order again
    return out[None], None


def _packed_mask(*args, **kwargs):
    """transformers' SDPA mask, except for one row with no padding mask (a flat batch):
    no mask at all there, where transformers would build a T x T one from position
    ids it reads as packed sequences -- packed_attention needs none (its plan holds
    the boundaries). Any other forward of the model keeps its ordinary mask."""
    from transformers.masking_utils import sdpa_mask

    if kwargs.get("attention_mask") is None and kwargs.get("batch_size") == 1:
        return None
    return sdpa_mask(*args, **kwargs)


def supports_flat(model) -> bool:
    """Models whose attention goes through transformers' AttentionInterface (so the
    registered packed_attention is what runs), text-only causal LMs."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return bool(getattr(base, "_supports_attention_backend", False))


def use_flat_attention(model) -> str:
    """Route ``model``'s attention through packed_attention; returns the previous
    implementation (to restore before saving)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(ATTENTION, packed_attention)
    AttentionMaskInterface.register(ATTENTION, _packed_mask)
    before = model.config._attn_implementation
    model.set_attn_implementation(ATTENTION)
    return before


class FlatCollator:
    """Collates TRL-prepared examples into one row of exactly their tokens:
    ``input_ids``, ``labels``, ``position_ids`` [1, T] and the attention plan. The
    first label of every example is dropped (-100): it would be predicted from the
    previous example's last token; padded, no token predicts it either."""

    def __init__(self, positions: PositionTable) -> None:
        self.positions = positions

    def __call__(self, examples: list[dict]) -> dict:
        import torch

        ids = [np.asarray(ex["input_ids"], dtype=np.int64) for ex in examples]
        labels = [np.array(ex.get("labels", ex["input_ids"]), dtype=np.int64) for ex in examples]
        for lab in labels:
            lab[0] = -100
        pos = [self.positions(ex["input_ids"]) for ex in examples]
        flat = lambda xs: torch.from_numpy(np.concatenate(xs))[None]  # noqa: E731
        return {"input_ids": flat(ids), "labels": flat(labels), "position_ids": flat(pos),
                "packed_plan": FlatPlan([len(x) for x in ids])}
