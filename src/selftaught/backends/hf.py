"""``hf``: sampling with a transformers causal LM on CPU (or one GPU).

We drive the model's own forward with a KV cache instead of calling
``generate`` for one reason ``generate`` cannot serve: tasks may define their own
position ids token by token (position coupling, see ``tasks/arithmetic.py``), and
those depend on the tokens sampled so far. Logits are the HF model's own;
sampling is temperature + nucleus (top-p), greedy at temperature 0.

Rows are sorted by prompt length and decoded ``batch_size`` at a time (left
padding). Each batch has its own ``torch.Generator`` seeded from the call's seed
and the batch index, so a call is deterministic for a given seed.
"""

from __future__ import annotations

from pydantic import Field

from selftaught.config import Component


class Config(Component):
    type: str = "hf"
    batch_size: int = Field(256, description="sequences decoded together")
    threads: int | None = Field(None, description="torch CPU threads (default: torch's choice)")


class HFBackend:
    name = "hf"

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.path: str | None = None
        self.model = self.tok = self.tracker = None

    def load(self, model_path: str, position_tracker=None) -> None:
        from selftaught.models.loading import load_pretrained

        self.tracker = position_tracker
        if model_path != self.path:
            if self.cfg.threads:
                import torch

                torch.set_num_threads(self.cfg.threads)
            self.model, self.tok = load_pretrained(model_path)
            self.path = model_path

    def sample(self, prompts: list[str], n: int, *, temperature: float, top_p: float = 1.0,
               max_new_tokens: int, seed: int, desc: str = "sample") -> list[list[str]]:
        from selftaught.progress import progress_bar

        if self.model is None:
            raise RuntimeError("hf backend: load() a model before sample()")
        ids = self.tok(prompts, add_special_tokens=False)["input_ids"]
        rows = [(len(ids[i]), i) for i in range(len(prompts)) for _ in range(n)]
        order = sorted(range(len(rows)), key=lambda r: rows[r][0])  # stable: same seed, same batches
        texts: list[str | None] = [None] * len(rows)
        bs = self.cfg.batch_size
        with progress_bar(desc, total=len(rows), unit="samples") as bar:
            for b, start in enumerate(range(0, len(order), bs)):
                chunk = order[start : start + bs]
                outs = self._decode([ids[rows[r][1]] for r in chunk], temperature, top_p, max_new_tokens,
                                    seed * 1_000_003 + b)
                for r, text in zip(chunk, outs):
                    texts[r] = text
                bar.advance(len(chunk))
        return [texts[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _decode(self, batch: list[list[int]], temperature: float, top_p: float, max_new: int, seed: int) -> list[str]:
        import torch
        from transformers import DynamicCache

        tok, model = self.tok, self.model
        gen = torch.Generator().manual_seed(seed)
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
        next_pos = pos[:, -1] + 1
        eos = tok.eos_token_id
        done = torch.zeros(nb, dtype=torch.bool)
        out: list[list[int]] = [[] for _ in batch]
        cache = DynamicCache(config=model.config)
        with torch.inference_mode():
            logits = model(input_ids=input_ids, attention_mask=attn, position_ids=pos, past_key_values=cache,
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
                    step_pos = torch.tensor([tr.feed(t) for tr, t in zip(trackers, tok.convert_ids_to_tokens(nxt.tolist()))])
                else:
                    step_pos, next_pos = next_pos, next_pos + 1
                attn = torch.cat([attn, (~done).long()[:, None]], dim=1)
                logits = model(input_ids=nxt[:, None], attention_mask=attn, position_ids=step_pos[:, None],
                               past_key_values=cache, use_cache=True).logits[:, -1]
        return tok.batch_decode(out, skip_special_tokens=True)


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
