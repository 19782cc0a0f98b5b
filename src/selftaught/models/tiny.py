"""``builtin:tiny``: a small Llama trained from scratch by selftaught itself.

It is a plain ``LlamaForCausalLM`` with a character-level tokenizer, saved as a
normal HF model directory, so it loads through the same path as any model. It is
warm-started with the same SFT trainer the loop uses, on the task's labeled seed
set, once with and once without STaR's hint in the prompt (so the model knows
what a hint is before it is asked to rationalize). Built once per task config
and cached under ``SELFTAUGHT_CACHE``.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

from rich.console import Console

from selftaught import registry
from selftaught.models.loading import build_once, cache_dir

# ~0.6M parameters: small enough to train in a couple of minutes on 2 cores.
ARCH = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=4)
WARM_START = dict(batch_size=64, lr=2e-3)  # steps come from the recipe (warm_start_steps)
VERSION = 2  # bump when the recipe of the tiny model changes; old caches are then ignored
SPECIALS = ["<pad>", "<eos>", "<unk>"]


def build_tokenizer(alphabet: str):
    """One token per character (digits must not merge: the scratchpad is digit-wise)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIALS + sorted(set(alphabet)))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def _warm_start_rows(task, seed: int) -> list[dict]:
    rows = [{"prompt": task.prompt(p, hint=hint), "completion": p.rationale}
            for p in task.seed_set() for hint in (False, True)]
    random.Random(seed).shuffle(rows)
    return rows


def _key(task, rows: list[dict], seed: int, steps: int) -> str:
    """Everything the built model depends on -- and nothing else, so changing, say,
    the eval split of a recipe reuses the cached model."""
    parts = [VERSION, ARCH, WARM_START, steps, sorted(task.alphabet), rows, seed]
    if task.train_positions_key:  # only then: every model cached before keeps its key
        parts.append(task.train_positions_key)
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def ensure(task, seed: int = 0, steps: int = 500) -> Path:
    """The cached warm-started model for ``task``; built if missing."""
    if task is None or task.alphabet is None:
        raise ValueError("builtin:tiny is a character-level model: it needs a task with an `alphabet` (e.g. arithmetic)")
    rows = _warm_start_rows(task, seed)
    out = cache_dir() / "models" / f"tiny-{task.name}-{_key(task, rows, seed, steps)}"
    return build_once(out, lambda d: (d / "config.json").is_file(), lambda: _build(task, rows, seed, steps, out))


def _build(task, rows: list[dict], seed: int, steps: int, out: Path) -> Path:
    Console(stderr=True).print(f"[bold]Building the built-in tiny model[/] (once; cached in {out})")
    tmp = out.with_name(out.name + f".tmp{random.randrange(1 << 30)}")
    init = tmp / "init"
    _init_model(task, seed).save_pretrained(init)
    build_tokenizer(task.alphabet).save_pretrained(init)
    # Through the registry, not an import: a model loader sits below the trainers.
    sft = registry.load("trainer", "sft")
    trainer = sft.build(sft.Config(lr=WARM_START["lr"], batch_size=WARM_START["batch_size"], warmup_ratio=0.02))
    trainer.train(str(init), rows, str(tmp / "model"), steps=steps, seed=seed,
                  position_tracker=task.train_position_tracker, desc="warm-start tiny model")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        (tmp / "model").rename(out)  # atomic: a half-built model never looks finished
    except OSError:  # another process finished first
        pass
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def _init_model(task, seed: int):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    n_vocab = len(SPECIALS) + len(set(task.alphabet))
    cfg = LlamaConfig(vocab_size=n_vocab, max_position_embeddings=4096, tie_word_embeddings=True,
                      pad_token_id=0, eos_token_id=1, bos_token_id=None, **ARCH)
    return LlamaForCausalLM(cfg)
