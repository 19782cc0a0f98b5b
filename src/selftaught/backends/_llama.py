"""A lean forward pass over a Llama-family HF model's own weights, for sampling.

Why: on CPU a tiny model's decode step is almost all fixed overhead inside
HF's eager ``LlamaForCausalLM.forward`` (~3.8 ms a step for 0.6M parameters,
measured on a 2-core CPU), and ``DynamicCache`` grows by ``torch.cat`` every step.
This is the same computation written the way gpt-fast / nanoGPT sample: a
pre-allocated KV cache with one row per sequence and per-row lengths, fused
QKV and gate/up matmuls, ``F.rms_norm`` and SDPA, no module dispatch. It reads
the HF model's tensors (no copy of the weights beyond the fused QKV/gate-up)
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


class _Layer:
    """One decoder layer's tensors, QKV and gate/up fused into one matmul each."""

    def __init__(self, layer) -> None:
        import torch

        a, m = layer.self_attn, layer.mlp
        self.wqkv = torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).detach()
        biases = [a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]
        self.bqkv = torch.cat(biases).detach() if biases[0] is not None else None
        self.wo, self.bo = a.o_proj.weight.detach(), a.o_proj.bias
        self.wgu = torch.cat([m.gate_proj.weight, m.up_proj.weight]).detach()
        self.wd = m.down_proj.weight.detach()
        self.ln1, self.ln2 = layer.input_layernorm.weight.detach(), layer.post_attention_layernorm.weight.detach()
        self.qn = a.q_norm.weight.detach() if hasattr(a, "q_norm") else None
        self.kn = a.k_norm.weight.detach() if hasattr(a, "k_norm") else None
        self.scaling = getattr(a, "scaling", None)


class LeanLlama:
    """Prefill and one-token decode steps over a static KV cache of ``rows`` sequences."""

    def __init__(self, model) -> None:
        cfg = model.config
        inner = model.model
        self.layers = [_Layer(layer) for layer in inner.layers]
        self.embed = inner.embed_tokens.weight.detach()
        self.norm = inner.norm.weight.detach()
        self.head = model.lm_head.weight.detach()
        self.eps = cfg.rms_norm_eps
        self.H, self.Hkv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.D = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.H
        self.d_ff = self.layers[0].wd.shape[1]
        rot = inner.rotary_emb
        self.inv_freq, self.rope_scale = rot.inv_freq.detach().float(), float(getattr(rot, "attention_scaling", 1.0))
        self.dtype, self.device = self.embed.dtype, self.embed.device  # the model's, as hardware.py placed it
        self.K = self.V = None

    def new_cache(self, rows: int, length: int) -> None:
        import torch

        shape = (len(self.layers), rows, self.Hkv, length, self.D)
        self.K = torch.zeros(shape, dtype=self.dtype, device=self.device)
        self.V = torch.zeros(shape, dtype=self.dtype, device=self.device)

    def _rope(self, pos):
        """cos, sin of shape pos.shape + (D,), as HF's rotary embedding computes them."""
        import torch

        freqs = pos.float()[..., None] * self.inv_freq
        emb = torch.cat([freqs, freqs], dim=-1)
        return (emb.cos() * self.rope_scale).to(self.dtype), (emb.sin() * self.rope_scale).to(self.dtype)

    @staticmethod
    def _rotate(x, cos, sin):
        import torch

        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def _qkv(self, ly: _Layer, x, cos, sin):
        """q [.., H, D], k and v [.., Hkv, D] of normed input x [.., d]; RoPE applied."""
        import torch.nn.functional as F

        h = F.rms_norm(x, (x.shape[-1],), ly.ln1, self.eps)
        qkv = F.linear(h, ly.wqkv, ly.bqkv)
        H, Hkv, D = self.H, self.Hkv, self.D
        q, k, v = qkv.split([H * D, Hkv * D, Hkv * D], dim=-1)
        q, k, v = q.unflatten(-1, (H, D)), k.unflatten(-1, (Hkv, D)), v.unflatten(-1, (Hkv, D))
        if ly.qn is not None:
            q, k = F.rms_norm(q, (D,), ly.qn, self.eps), F.rms_norm(k, (D,), ly.kn, self.eps)
        return self._rotate(q, cos, sin), self._rotate(k, cos, sin), v

    def _mlp_out(self, ly: _Layer, x, att):
        import torch.nn.functional as F

        x = x + F.linear(att, ly.wo, ly.bo)
        h = F.rms_norm(x, (x.shape[-1],), ly.ln2, self.eps)
        g, u = F.linear(h, ly.wgu).split([self.d_ff, self.d_ff], dim=-1)
        return x + F.linear(F.silu(g) * u, ly.wd)

    def _logits(self, x):
        import torch.nn.functional as F

        return F.linear(F.rms_norm(x, (x.shape[-1],), self.norm, self.eps), self.head).float()

    def prefill(self, ids, pos, last, slots, src):
        """Run right-padded prompts ``ids`` [u, P] (positions ``pos``, last real index
        ``last`` [u]) once, write their KV into cache rows ``slots`` (row ``slots[i]``
        gets prompt ``src[i]``: one prompt's KV shared by all its samples), and return
        the next-token logits of each slot [len(slots), V].

        Right padding needs no mask: with causal attention a real token never sees
        the pads after it, and pad KV beyond a row's length is masked, then overwritten."""
        import torch
        import torch.nn.functional as F

        ids, pos, last, slots, src = (t.to(self.device) for t in (ids, pos, last, slots, src))
        u, P = ids.shape
        x = self.embed[ids]
        cos, sin = (t[:, :, None, :] for t in self._rope(pos))
        gqa = self.H != self.Hkv
        for i, ly in enumerate(self.layers):
            q, k, v = (t.transpose(1, 2) for t in self._qkv(ly, x, cos, sin))  # [u, heads, P, D]
            self.K[i, slots, :, :P] = k[src]
            self.V[i, slots, :, :P] = v[src]
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=ly.scaling, enable_gqa=gqa)
            x = self._mlp_out(ly, x, att.transpose(1, 2).flatten(-2))
        return self._logits(x[torch.arange(u, device=self.device), last][src]).cpu()  # the scheduler is on the CPU

    def step(self, tokens, pos, lens, b: int):
        """One decode step for cache rows [0, b): feed ``tokens`` [b] at positions ``pos``
        [b], written at cache index ``lens`` [b]; return logits [b, V]."""
        import torch
        import torch.nn.functional as F

        tokens, pos, lens = tokens.to(self.device), pos.to(self.device), lens.to(self.device)
        x = self.embed[tokens]
        cos, sin = (t[:, None, :] for t in self._rope(pos))
        rows = torch.arange(b, device=self.device)
        T = int(lens.max()) + 1
        mask = (torch.arange(T, device=self.device)[None, :] <= lens[:, None])[:, None, None, :]  # [b, 1, 1, T]
        gqa = self.H != self.Hkv
        for i, ly in enumerate(self.layers):
            q, k, v = self._qkv(ly, x, cos, sin)  # [b, heads, D]
            self.K[i, rows, :, lens] = k
            self.V[i, rows, :, lens] = v
            att = F.scaled_dot_product_attention(q[:, :, None], self.K[i, :b, :, :T], self.V[i, :b, :, :T],
                                                 attn_mask=mask, scale=ly.scaling, enable_gqa=gqa)
            x = self._mlp_out(ly, x, att.flatten(1))
        return self._logits(x).cpu()

    def move(self, src, dst, length: int) -> None:
        """Copy the first ``length`` cache entries of rows ``src`` to rows ``dst`` (compaction)."""
        src, dst = src.to(self.device), dst.to(self.device)
        self.K[:, dst, :, :length] = self.K[:, src, :, :length]
        self.V[:, dst, :, :length] = self.V[:, src, :, :length]
