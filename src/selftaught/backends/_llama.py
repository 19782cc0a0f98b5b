"""A lean forward pass over a Llama-family HF model's own weights, for sampling.

Why: on CPU a tiny model's decode step is almost all fixed overhead inside
HF's eager ``LlamaForCausalLM.forward`` (~3.8 ms a step for 0.6M parameters,
measured on a 2-core CPU), and ``DynamicCache`` grows by ``torch.cat`` every step.
This is the same computation written the way gpt-fast / nanoGPT sample: a
pre-allocated KV cache with one row per sequence and per-row lengths, fused
QKV and gate/up matmuls, ``F.rms_norm`` and SDPA, no module dispatch. It reads
the HF model's tensors (no copy of the weights beyond the fused QKV/gate-up; on
the CPU in fp32 the products' weights are packed copies for oneDNN, ``_Linear``)
and is tested to give the HF model's logits (``tests/unit/test_hf_backend.py``),
with ordinary or custom position ids.

The weights and the KV cache stay where ``hardware.py`` put the model (a GPU or
the CPU); the continuous-batching scheduler (``_batching.py``) keeps its small
per-slot state on the CPU, so token ids go in and logits come back at each call.

Supported: ``llama`` (SmolLM2, TinyLlama, Llama 2/3), ``mistral`` without a
sliding window, ``qwen2`` (QKV biases), ``qwen3`` (per-head q/k norms). Other
architectures use the HF-forward fallback in ``hf.py``.
"""

from __future__ import annotations

SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")


def supports(model) -> bool:
    cfg = model.config
    return cfg.model_type in SUPPORTED and not getattr(cfg, "sliding_window", None) \
        and getattr(cfg, "hidden_act", "silu") == "silu" and not getattr(cfg, "mlp_bias", False)


class _Linear:
    """``F.linear(x, w, b)``; on CPU in fp32 through oneDNN with ``w`` packed once.

    Why: fp32 products of a few dozen rows (a decode step) ran 2.4x faster through
    oneDNN with a pre-packed weight than through ``F.linear`` (MKL) on the 2-core
    AMD box (all of a SmolLM2 step's products at 64 rows: 56 vs 135 ms), and
    sampling is almost all such products. These are the calls ``torch.compile`` emits for CPU linears when it
    freezes weights (``mkldnn._linear_pointwise``); we make them directly because
    compiling costs 40-60 s a shape here. Elsewhere (a GPU, bf16) it is ``F.linear``."""

    def __init__(self, w, b, onednn: bool) -> None:
        import torch

        self.b = b.detach() if b is not None else None
        self.packed = torch.ops.mkldnn._reorder_linear_weight(w.detach(), None) if onednn else None
        self.w = None if onednn else w.detach()  # the packed copy replaces it

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        if self.packed is None:
            return F.linear(x, self.w, self.b)
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), self.packed, self.b, "none", [], "")


def use_onednn(model) -> bool:
    """oneDNN linears for a model in fp32 on the CPU, when torch was built with it."""
    import torch

    p = model.lm_head.weight
    return p.device.type == "cpu" and p.dtype == torch.float32 and torch.backends.mkldnn.is_available() \
        and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


class _Layer:
    """One decoder layer's tensors, QKV and gate/up fused into one product each."""

    def __init__(self, layer, onednn: bool) -> None:
        import torch

        a, m = layer.self_attn, layer.mlp
        wqkv = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).detach()
        biases = [a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]
        self.qkv = _Linear(wqkv, torch.cat(biases).detach() if biases[0] is not None else None, onednn)
        self.o = _Linear(a.o_proj.weight, a.o_proj.bias, onednn)
        self.gu = _Linear(torch.cat([m.gate_proj.weight, m.up_proj.weight]).detach(), None, onednn)
        self.down = _Linear(m.down_proj.weight, None, onednn)
        self.d_ff = m.down_proj.weight.shape[1]
        self.ln1, self.ln2 = layer.input_layernorm.weight.detach(), layer.post_attention_layernorm.weight.detach()
        self.qn = a.q_norm.weight.detach() if hasattr(a, "q_norm") else None
        self.kn = a.k_norm.weight.detach() if hasattr(a, "k_norm") else None
        self.scaling = getattr(a, "scaling", None)


class LeanLlama:
    """Prefill and one-token decode steps over a static KV cache of ``rows`` sequences."""

    def __init__(self, model, onednn: bool | None = None) -> None:
        cfg = model.config
        inner = model.model
        onednn = use_onednn(model) if onednn is None else onednn
        self.layers = [_Layer(layer, onednn) for layer in inner.layers]
        self.embed = inner.embed_tokens.weight.detach()
        self.norm = inner.norm.weight.detach()
        self.head = model.lm_head.weight.detach()
        self.lm_head = _Linear(self.head, None, onednn)
        self.eps = cfg.rms_norm_eps
        self.H, self.Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.D = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.H
        self.d_ff = self.layers[0].d_ff
        rot = inner.rotary_emb
        self.inv_freq, self.rope_scale = rot.inv_freq.detach().float(), float(getattr(rot, "attention_scaling", 1.0))
        self.dtype, self.device = self.embed.dtype, self.embed.device  # the model's, as hardware.py placed it
        self.cos = self.sin = None  # RoPE tables by position id, grown on demand (_rope)
        self.K = self.V = None

    def new_cache(self, rows: int, length: int) -> None:
        import torch

        shape = (len(self.layers), rows, self.Hkv, length, self.D)
        self.K = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.V = torch.zeros(shape, dtype=self.dtype, device=self.device)

    def grow_cache(self, rows: int, length: int) -> None:
        """A longer cache holding the first ``rows`` rows of the old one. Why grow rather
        than allocate max_new up front: zeroing a full-length cache for every slot is
        page faults over memory most rows never reach (most rows end early); on the
        tiny model it cost a sixth of a whole sample call."""
        K, V = self.K, self.V
        self.new_cache(rows, length)
        n, L = min(rows, K.shape[1]), K.shape[3]
        self.K[:, :n, :, :L], self.V[:, :n, :, :L] = K[:, :n], V[:, :n]

    def _rope(self, pos, top: int):
        """cos, sin of shape pos.shape + (D,) for position ids in [0, ``top``), as HF's rotary
        embedding computes them (the same float ops), looked up in
        tables instead of recomputed each step; sin has its first half negated so that
        rotate_half(x) * sin is x.roll(D/2) * sin (_rotate)."""
        import torch

        if self.cos is None or self.cos.shape[0] < top:
            n = max(top, 2 * (self.cos.shape[0] if self.cos is not None else 256))
            freqs = torch.arange(n, device=self.inv_freq.device).float()[:, None] * self.inv_freq
            emb = torch.cat([freqs, freqs], dim=-1)
            sin = emb.sin() * self.rope_scale
            sin[:, : self.D // 2].neg_()
            self.cos, self.sin = (emb.cos() * self.rope_scale).to(self.dtype), sin.to(self.dtype)
        return self.cos[pos], self.sin[pos]

    def _rotate(self, x, cos, sin):
        """HF's x * cos + rotate_half(x) * sin in four ops: rotate_half(x) is
        cat(-x2, x1) = roll(x, D/2) with the sign folded into the table (exact)."""
        return x * cos + x.roll(self.D // 2, -1) * sin

    def _qkv(self, ly: _Layer, x, cos, sin):
        """q [.., H, D], k and v [.., Hkv, D] of normed input x [.., d]; RoPE applied
        to q and k together (one rotation over H + Hkv heads)."""
        import torch
        import torch.nn.functional as F

        h = F.rms_norm(x, (x.shape[-1],), ly.ln1, self.eps)
        qkv = ly.qkv(h)
        H, Hkv, D = self.H, self.Hkv, self.D
        qk, v = qkv[..., : (H + Hkv) * D].unflatten(-1, (H + Hkv, D)), qkv[..., (H + Hkv) * D :].unflatten(-1, (Hkv, D))
        if ly.qn is not None:
            q, k = qk.split([H, Hkv], dim=-2)
            qk = torch.cat([F.rms_norm(q, (D,), ly.qn, self.eps), F.rms_norm(k, (D,), ly.kn, self.eps)], dim=-2)
        qk = self._rotate(qk, cos, sin)
        return qk[..., :H, :], qk[..., H:, :], v

    def _mlp_out(self, ly: _Layer, x, att):
        import torch.nn.functional as F

        x = x + ly.o(att)
        h = F.rms_norm(x, (x.shape[-1],), ly.ln2, self.eps)
        g, u = ly.gu(h).split([self.d_ff, self.d_ff], dim=-1)
        return x + ly.down(F.silu(g) * u)

    def _logits(self, x):
        import torch.nn.functional as F

        return self.lm_head(F.rms_norm(x, (x.shape[-1],), self.norm, self.eps)).float()

    def prefill(self, ids, pos, last, slots, src):
        """Run right-padded prompts ``ids`` [u, P] (positions ``pos``, last real index
        ``last`` [u]) once, write their KV into cache rows ``slots`` (row ``slots[i]``
        gets prompt ``src[i]``: one prompt's KV shared by all its samples), and return
        the next-token logits of each slot [len(slots), V].

        Right padding needs no mask: with causal attention a real token never sees
        the pads after it, and pad KV beyond a row's length is masked, then overwritten."""
        import torch
        import torch.nn.functional as F

        top = int(pos.max()) + 1
        ids, pos, last, slots, src = (t.to(self.device) for t in (ids, pos, last, slots, src))
        u, P = ids.shape
        x = self.embed[ids]
        cos, sin = (t[:, :, None, :] for t in self._rope(pos, top))
        gqa = self.H != self.Hkv
        for i, ly in enumerate(self.layers):
            q, k, v = (t.transpose(1, 2) for t in self._qkv(ly, x, cos, sin))  # [u, heads, P, D]
            # index_copy_ copies whole slabs per slot; assigning through K[i, slots, :, :P]
            # takes the general (element-wise) advanced-indexing path
            self.K[i, :, :, :P].index_copy_(0, slots, k[src])
            self.V[i, :, :, :P].index_copy_(0, slots, v[src])
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=ly.scaling, enable_gqa=gqa)
            x = self._mlp_out(ly, x, att.transpose(1, 2).flatten(-2))
        return self._logits(x[torch.arange(u, device=self.device), last][src]).cpu()  # the scheduler is on the CPU

    def step(self, tokens, pos, lens, b: int):
        """One decode step for cache rows [0, b): feed ``tokens`` [b] at positions ``pos``
        [b], written at cache index ``lens`` [b]; return logits [b, V]."""
        import torch
        import torch.nn.functional as F

        top, T = int(pos.max()) + 1, int(lens.max()) + 1
        tokens, pos, lens = tokens.to(self.device), pos.to(self.device), lens.to(self.device)
        x = self.embed[tokens]
        cos, sin = (t[:, None, :] for t in self._rope(pos, top))
        rows = torch.arange(b, device=self.device)
        # one additive mask for every layer (a bool mask is converted inside SDPA, per call)
        ahead = torch.arange(T, device=self.device)[None, :] > lens[:, None]
        mask = torch.zeros(b, T, dtype=self.dtype, device=self.device).masked_fill_(ahead, float("-inf"))[:, None, None]
        Hkv, g = self.Hkv, self.H // self.Hkv
        for i, ly in enumerate(self.layers):
            q, k, v = self._qkv(ly, x, cos, sin)  # [b, heads, D]
            self.K[i, rows, :, lens] = k
            self.V[i, rows, :, lens] = v
            # GQA as grouped queries: with one query token, the g query heads of a KV head
            # are g queries against it (HF's repeat_kv order); measured a little faster
            # than enable_gqa (a SmolLM2 step's 30 layers: 27 vs 29 ms)
            att = F.scaled_dot_product_attention(q.unflatten(1, (Hkv, g)), self.K[i, :b, :, :T], self.V[i, :b, :, :T],
                                                 attn_mask=mask, scale=ly.scaling)
            x = self._mlp_out(ly, x, att.flatten(1))
        return self._logits(x).cpu()

    def move(self, src, dst, length: int) -> None:
        """Copy the first ``length`` cache entries of rows ``src`` to rows ``dst`` (compaction)."""
        src, dst = src.to(self.device), dst.to(self.device)
        self.K[:, :, :, :length].index_copy_(1, dst, self.K[:, src, :, :length])
        self.V[:, :, :, :length].index_copy_(1, dst, self.V[:, src, :, :length])
