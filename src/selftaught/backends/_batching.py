"""Continuous batching over ``LeanLlama`` (``_llama.py``) for the ``hf`` backend.

Work is one *row* per (prompt, sample). Rows are taken in order of prompt length
into ``batch_size`` cache slots. A prompt is prefilled once and its KV copied to
every slot that samples from it (HF ``generate(num_return_sequences=n)`` prefills
it n times). When a row finishes (EOS, a stop string, or the token budget), its
slot is refilled with the next row at once instead of decoding padding; when no
work is left, the last live rows move into the freed slots so steps shrink with
them. The KV cache starts with room for ``FIRST_NEW`` new tokens and doubles when a
row outgrows it.

Randomness is per row, not per batch: token t of row (prompt i, sample j) is
drawn by inverse-CDF sampling with a uniform that is a hash of (seed, i, j, t)
(splitmix64, vectorised in int64). So a row's sample does not depend on which
rows share its batch, on ``batch_size``, or on how prompts are sharded over
workers (``backends/ray.py`` passes each shard's global index offset), and it
is an exact draw from the softmax (top-p) distribution.
"""

from __future__ import annotations

import copy
import hashlib
from collections import deque

_M64 = (1 << 64) - 1
FIRST_NEW = 32  # new tokens the KV cache has room for before it first grows (_Slots)


def _signed(x: int) -> int:
    x &= _M64
    return x - (1 << 64) if x >> 63 else x


_GOLDEN, _MUL1, _MUL2 = _signed(0x9E3779B97F4A7C15), _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)


def row_key(seed: int, prompt_index: int, sample: int) -> int:
    """The random stream of one row, from (call seed, global prompt index, sample index)."""
    return _signed(int.from_bytes(hashlib.blake2b(f"{seed}/{prompt_index}/{sample}".encode(), digest_size=8).digest(), "little"))


def uniforms(keys, steps):
    """A uniform in [0, 1) per row: splitmix64(key + step * golden), int64 arithmetic
    wraps like uint64; right shifts are made logical by masking."""
    x = keys + steps * _GOLDEN
    x = (x ^ ((x >> 30) & ((1 << 34) - 1))) * _MUL1
    x = (x ^ ((x >> 27) & ((1 << 37) - 1))) * _MUL2
    x = x ^ ((x >> 31) & ((1 << 33) - 1))
    return ((x >> 11) & ((1 << 53) - 1)).double() / float(1 << 53)


def pick(logits, temperature: float, top_p: float, u):
    """Greedy at temperature 0, else an inverse-CDF draw with uniforms ``u`` from the
    temperature-scaled softmax, restricted to the top-p nucleus when top_p < 1.
    (Not ``torch.multinomial``: it draws from one generator per batch, and a row's
    draw must depend on its own uniforms only.)"""
    import torch

    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    idx = None
    if top_p < 1.0:
        probs, idx = probs.sort(dim=-1, descending=True)
        probs[probs.cumsum(-1) - probs > top_p] = 0.0  # keep the smallest prefix whose mass reaches top_p
    choice = inverse_cdf(probs, u)
    return idx.gather(-1, choice[:, None]).squeeze(-1) if idx is not None else choice


def inverse_cdf(probs, u, block: int = 256):
    """Per row, the first index whose cumulative mass (float64) exceeds u x total;
    a zero-mass index is never chosen. Over a large vocabulary in two levels, block
    masses then the chosen block: the same draw (up to float64 rounding) at a fraction
    of the cost of a cumulative sum over every logit (3.6 ms a step on SmolLM2's
    49,152 logits x 64 rows, more than the rest of the sampler)."""
    import torch

    b, V = probs.shape
    if V % block or V < 16 * block:
        cdf = probs.double().cumsum(-1)
        return torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=V - 1).squeeze(-1)
    blocks = probs.view(b, V // block, block)
    mass = blocks.sum(-1, dtype=torch.float64).cumsum_(-1)  # [b, V / block]
    target = (u * mass[:, -1])[:, None]
    j = torch.searchsorted(mass, target, right=True).clamp_(max=V // block - 1)  # its mass is > 0
    before = torch.where(j > 0, mass.gather(1, (j - 1).clamp(min=0)), 0.0)
    inner = blocks.gather(1, j[:, :, None].expand(b, 1, block))[:, 0].double().cumsum_(-1)
    # the block's sum and its cumulative sum may round apart: stay below the latter,
    # so the search lands on an index with mass even then
    rest = torch.minimum(target - before, inner[:, -1:] * (1 - 2.0**-52))
    return (j * block + torch.searchsorted(inner, rest, right=True)).squeeze(-1)


class Prompt:
    """A tokenized prompt, its position ids, and the position tracker after it (or None)."""

    def __init__(self, ids: list[int], pos: list[int], tracker=None) -> None:
        self.ids, self.pos, self.tracker = ids, pos, tracker


class _Slots:
    """Per-slot state of the static cache: which row each slot decodes, its cache
    length, the position id of its next token, its random stream and counter."""

    def __init__(self, lean, prompts: list[Prompt], rows, B: int, max_new: int) -> None:
        import torch

        self.lean, self.prompts, self.rows, self.B = lean, prompts, rows, B
        # the cache starts with room for FIRST_NEW new tokens and doubles when a row needs more (step)
        longest = max(len(p.ids) for p in prompts)
        self.full = longest + max_new + 1
        self.cap = min(self.full, longest + FIRST_NEW + 1)
        lean.new_cache(B, self.cap)
        self.row = [-1] * B  # row decoded in each slot, -1 when free
        self.trackers: list = [None] * B
        self.has_tracker = torch.zeros(B, dtype=torch.bool)
        self.lens = torch.zeros(B, dtype=torch.long)  # tokens in the slot's cache = index of the next write
        self.pos = torch.zeros(B, dtype=torch.long)  # custom position id of the next token (trackers)
        self.keys = torch.zeros(B, dtype=torch.long)
        self.ntok = torch.zeros(B, dtype=torch.long)  # tokens sampled so far: the uniform's counter
        self.logits = torch.zeros(B, lean.head.shape[0])

    def live(self) -> list[int]:
        return [s for s in range(self.B) if self.row[s] >= 0]

    def admit(self, queue: deque) -> None:
        """Fill free slots with queued rows: one prefill per distinct prompt, KV copied to its slots."""
        import torch

        free = [s for s in range(self.B) if self.row[s] < 0][: len(queue)]
        if not free:
            return
        taken = [queue.popleft() for _ in free]
        uniq = list(dict.fromkeys(self.rows[r][0] for r in taken))
        where = {p: i for i, p in enumerate(uniq)}
        P = max(len(self.prompts[p].ids) for p in uniq)
        ids = torch.zeros(len(uniq), P, dtype=torch.long)
        pos = torch.zeros(len(uniq), P, dtype=torch.long)
        for i, p in enumerate(uniq):
            n = len(self.prompts[p].ids)
            ids[i, :n], pos[i, :n] = torch.tensor(self.prompts[p].ids), torch.tensor(self.prompts[p].pos)
        last = torch.tensor([len(self.prompts[p].ids) - 1 for p in uniq])
        slots = torch.tensor(free)
        self.logits[slots] = self.lean.prefill(ids, pos, last, slots, torch.tensor([where[self.rows[r][0]] for r in taken]))
        for s, r in zip(free, taken):
            p = self.prompts[self.rows[r][0]]
            self.row[s], self.trackers[s] = r, copy.deepcopy(p.tracker)
            self.has_tracker[s] = p.tracker is not None
            self.lens[s], self.keys[s], self.ntok[s] = len(p.ids), self.rows[r][2], 0

    def free(self, s: int) -> None:
        self.row[s], self.trackers[s], self.lens[s] = -1, None, 0

    def compact(self) -> None:
        """Move the last live rows into the free slots below them, so that a step
        computes live rows only (a row's draws do not depend on its slot). Called once
        no work is queued; it copies only the rows that move."""
        import torch

        live = self.live()
        n = len(live)
        holes = [s for s in range(n) if self.row[s] < 0]
        if not holes:
            return
        movers = live[n - len(holes):]  # the live slots at or past n, as many as the holes
        src, dst = torch.tensor(movers), torch.tensor(holes)
        self.lean.move(src, dst, int(self.lens[src].max()))
        for t in (self.has_tracker, self.lens, self.pos, self.keys, self.ntok, self.logits):
            t[dst] = t[src]
        for s, d in zip(movers, holes):
            self.row[d], self.trackers[d] = self.row[s], self.trackers[s]
            self.free(s)

    def step(self, tokens, hi: int, queued: bool) -> None:
        """Feed each slot's sampled token; dead slots in [0, hi) compute harmless garbage.
        The cache grows first if a row is about to outgrow it: all slots while work is
        queued, else only [0, hi) (no slot past hi is used again)."""
        import torch

        self.lens[:hi].masked_fill_(torch.tensor([r < 0 for r in self.row[:hi]]), 0)
        if int(self.lens[:hi].max()) + 1 > self.cap:
            self.cap = min(self.full, 2 * self.cap)
            self.lean.grow_cache(self.B if queued else hi, self.cap)
        feed_pos = torch.where(self.has_tracker[:hi], self.pos[:hi], self.lens[:hi])
        self.logits[:hi] = self.lean.step(tokens[:hi], feed_pos, self.lens[:hi], hi)
        self.lens[:hi] += 1


def run(lean, prompts: list[Prompt], rows: list[tuple[int, int, int]], *, batch_size: int, max_new: int,
        temperature: float, top_p: float, eos: set[int], id2tok: list[str], stop=None, on_done=None) -> list[list[int]]:
    """Generated token ids (EOS excluded) of each row (prompt index, sample index, key),
    in ``rows`` order. ``stop(tokens) -> bool`` ends a row early (stop strings);
    ``on_done()`` is called as each row finishes (progress bars)."""
    import torch

    out: list[list[int]] = [[] for _ in rows]
    if not rows or max_new <= 0:
        return out
    if any(not p.ids for p in prompts):
        raise ValueError("hf backend: an empty prompt has nothing to condition on")
    queue = deque(sorted(range(len(rows)), key=lambda r: (len(prompts[rows[r][0]].ids), r)))
    st = _Slots(lean, prompts, rows, min(batch_size, len(rows)), max_new)
    with torch.inference_mode():
        st.admit(queue)
        while live := st.live():
            if not queue:
                st.compact()
                live = st.live()
            hi = live[-1] + 1
            tokens = pick(st.logits[:hi], temperature, top_p, uniforms(st.keys[:hi], st.ntok[:hi]))
            st.ntok[:hi] += 1
            tracked, tracked_pos = [], []  # set in one go: a tensor item assignment costs microseconds
            for s, t in zip(live, tokens[live].tolist()):
                r = st.row[s]
                if t not in eos:
                    out[r].append(t)
                if t in eos or len(out[r]) >= max_new or (stop is not None and stop(out[r])):
                    st.free(s)
                    if on_done:
                        on_done()
                elif st.trackers[s] is not None:
                    tracked.append(s)
                    tracked_pos.append(st.trackers[s].feed(id2tok[t]))
            if tracked:
                st.pos[tracked] = torch.tensor(tracked_pos)
            if st.live():
                st.step(tokens, hi, bool(queue))
            st.admit(queue)
    return out
