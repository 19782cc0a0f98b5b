"""``hf``: sampling with a transformers causal LM on CPU or one GPU (``hardware.py`` decides).

We drive the model's own forward with a KV cache instead of calling
``generate`` for one reason ``generate`` cannot serve: tasks may define their own
position ids token by token (position coupling, see ``tasks/arithmetic.py``), and
those depend on the tokens sampled so far. Logits are the HF model's own;
sampling is temperature + nucleus (top-p), greedy at temperature 0.

Llama-family models (``llama``, ``mistral``, ``qwen2``, ``qwen3``) decode through
a lean forward over the model's own weights with a static KV cache
(``_llama.py``, tested to match the HF model's logits) and continuous batching
(``_batching.py``): each prompt is prefilled once and its KV shared by its ``n``
samples, rows are taken in order of prompt length, and a finished row's slot is
refilled at once. Row (prompt i, sample j) draws its tokens from its own random
stream keyed by (seed, i, j), so a call is deterministic for a given seed and a
row's sample does not depend on batch size or sharding. ``stop`` strings end a
row; the text is cut before the first one.

Other architectures fall back to the HF forward with a ``DynamicCache``: rows
sorted by prompt length, ``batch_size`` at a time with left padding, one
``torch.Generator`` per batch (deterministic per seed, but not batch-invariant).
"""

from __future__ import annotations

from pydantic import Field

from selftaught.component import Component


class Config(Component):
    type: str = "hf"
    batch_size: int = Field(256, description="sequences decoded together")
    threads: int | None = Field(None, description="torch CPU threads (default: torch's choice)")
    chat_template: bool | None = Field(None, description="wrap prompts in the model's chat template (None: if it has one)")
    stop: list[str] = Field([], description="strings that end a completion (cut from the text)")
    lean: bool = Field(True, description="lean static-cache decode for Llama-family models (False: HF forward)")


class HFBackend:
    name = "hf"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.path: str | None = None
        self.model = self.tok = self.tracker = self.lean = None
        self.eos: set[int] = set()
        self.id2tok: list[str] = []

    def load(self, model_path: str, position_tracker=None) -> None:
        from selftaught.models.loading import load_pretrained

        self.tracker = position_tracker
        if model_path != self.path:
            if self.cfg.threads:
                import torch

                torch.set_num_threads(self.cfg.threads)
            self.model, self.tok = load_pretrained(model_path)
            self.path = model_path
            self._prepare_lean()

    def _prepare_lean(self) -> None:
        from selftaught.backends import _llama

        model, tok = self.model, self.tok
        self.lean = _llama.LeanLlama(model) if self.cfg.lean and _llama.supports(model) else None
        self.eos = {tok.eos_token_id} - {None}
        for src in (model.generation_config, model.config):
            e = getattr(src, "eos_token_id", None)
            self.eos |= set(e if isinstance(e, list) else [e]) - {None}
        names = tok.convert_ids_to_tokens(list(range(len(tok))))
        self.id2tok = names + [""] * max(0, model.config.vocab_size - len(names))

    def sample(self, prompts: list[str], n: int, *, temperature: float, top_p: float = 1.0,
               max_new_tokens: int, seed: int, desc: str = "sample", index_offset: int = 0) -> list[list[str]]:
        """``index_offset``: the global index of ``prompts[0]`` when one call is sharded
        over workers (``backends/ray.py``), so shards draw what the whole call would."""
        from selftaught.progress import progress_bar

        if self.model is None:
            raise RuntimeError("hf backend: load() a model before sample()")
        from selftaught.models.chat import render_prompt

        texts_in = [render_prompt(self.tok, p, self.cfg.chat_template) for p in prompts]
        ids = self.tok(texts_in, add_special_tokens=False)["input_ids"]
        with progress_bar(desc, total=len(prompts) * n, unit="samples") as bar:
            if self.lean is not None:
                texts = self._sample_lean(ids, n, temperature, top_p, max_new_tokens, seed, index_offset, bar)
            else:
                texts = self._sample_hf(ids, n, temperature, top_p, max_new_tokens, seed, bar)
        texts = [self._cut(t) for t in texts]
        return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _sample_lean(self, ids, n, temperature, top_p, max_new, seed, offset, bar) -> list[str]:
        """Rows in (prompt, sample) order, through the lean static-cache decoder."""
        from selftaught.backends import _batching

        prompts = []
        for x in ids:
            tracker = self.tracker() if self.tracker else None
            names = self.tok.convert_ids_to_tokens(x)
            prompts.append(_batching.Prompt(x, [tracker.feed(t) for t in names] if tracker else list(range(len(x))), tracker))
        rows = [(i, j, _batching.row_key(seed, offset + i, j)) for i in range(len(ids)) for j in range(n)]
        out = _batching.run(self.lean, prompts, rows, batch_size=self.cfg.batch_size, max_new=max_new,
                            temperature=temperature, top_p=top_p, eos=self.eos, id2tok=self.id2tok,
                            stop=self._stopper(), on_done=lambda: bar.advance(1))
        return self.tok.batch_decode(out, skip_special_tokens=True)

    def _stopper(self):
        """``tokens -> bool``: does the tail of a row contain a stop string?"""
        if not self.cfg.stop:
            return None
        stops, window = self.cfg.stop, 2 * max(len(s) for s in self.cfg.stop) + 2
        return lambda tokens: any(s in self.tok.decode(tokens[-window:]) for s in stops)

    def _cut(self, text: str) -> str:
        """The text before the first stop string."""
        cuts = [text.find(s) for s in self.cfg.stop if s in text]
        return text[: min(cuts)] if cuts else text

    def _sample_hf(self, ids, n, temperature, top_p, max_new, seed, bar) -> list[str]:
        """Fallback for non-Llama architectures: HF forward, left-padded batches."""
        rows = [(len(ids[i]), i) for i in range(len(ids)) for _ in range(n)]
        order = sorted(range(len(rows)), key=lambda r: rows[r][0])  # stable: same seed, same batches
        texts: list[str] = [""] * len(rows)
        bs = self.cfg.batch_size
        for b, start in enumerate(range(0, len(order), bs)):
            chunk = order[start : start + bs]
            outs = self._decode([ids[rows[r][1]] for r in chunk], temperature, top_p, max_new, seed * 1_000_003 + b)
            for r, text in zip(chunk, outs):
                texts[r] = text
            bar.advance(len(chunk))
        return texts

    def _decode(self, batch: list[list[int]], temperature: float, top_p: float, max_new: int, seed: int) -> list[str]:
        import torch
        from transformers import DynamicCache

        tok, model = self.tok, self.model
        dev = model.device  # where hardware.py put it (load_pretrained)
        gen = torch.Generator(device=dev).manual_seed(seed)
        nb, width = len(batch), max(len(x) for x in batch)
        input_ids = torch.full((nb, width), tok.pad_token_id)
        attn = torch.zeros((nb, width), dtype=torch.long)
        pos = torch.zeros((nb, width), dtype=torch.long)
        trackers = [self.tracker() for _ in batch] if self.tracker else None
        for r, x in enumerate(batch):
            input_ids[r, width - len(x) :] = torch.tensor(x)
            attn[r, width - len(x) :] = 1
            if trackers:
                pos[r, width - len(x) :] = torch.tensor([trackers[r].feed(t) for t in tok.convert_ids_to_tokens(x)])
            else:
                pos[r, width - len(x) :] = torch.arange(len(x))
        input_ids, attn, pos = input_ids.to(dev), attn.to(dev), pos.to(dev)
        next_pos = pos[:, -1] + 1
        eos = tok.eos_token_id
        done = torch.zeros(nb, dtype=torch.bool, device=dev)
        out: list[list[int]] = [[] for _ in batch]
        cache = {_cache_kwarg(model): DynamicCache(config=model.config)}
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=attn, position_ids=pos, **cache,
                           use_cache=True, logits_to_keep=1).logits[:, -1]
            for _ in range(max_new):
                nxt = _pick(logits, temperature, top_p, gen)
                for r in (~done).nonzero().flatten().tolist():
                    if nxt[r].item() != eos:
                        out[r].append(nxt[r].item())
                done |= nxt == eos
                if done.all():
                    break
                nxt[done] = tok.pad_token_id
                if trackers:
                    step_pos = torch.tensor([tr.feed(t) for tr, t in zip(trackers, tok.convert_ids_to_tokens(nxt.tolist()))],
                                            device=dev)
                else:
                    step_pos, next_pos = next_pos, next_pos + 1
                attn = torch.cat([attn, (~done).long()[:, None]], dim=1)
                logits = model(input_ids=nxt[:, None], attention_mask=attn, position_ids=step_pos[:, None],
                               **cache, use_cache=True).logits[:, -1]
        return tok.batch_decode(out, skip_special_tokens=True)


def _cache_kwarg(model) -> str:
    """The forward argument that takes the KV cache: ``cache`` in recent transformers 5.x,
    where ``past_key_values`` is deprecated (removal announced for 5.40); earlier
    releases the pin allows know only ``past_key_values``."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _pick(logits, temperature: float, top_p: float, gen):
    """Greedy at temperature 0, else temperature + nucleus sampling."""
    import torch

    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, idx = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest prefix whose mass reaches top_p
        sorted_p[drop] = 0.0
        probs = torch.zeros_like(probs).scatter(-1, idx, sorted_p)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def build(cfg: Config) -> HFBackend:
    return HFBackend(cfg)
