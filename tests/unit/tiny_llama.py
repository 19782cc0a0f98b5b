"""A random 1-layer Llama with the arithmetic task's character tokenizer, saved as an
ordinary HF model directory: the smallest real model the unit tests load."""

from pathlib import Path


def save_tiny_llama(out: Path, max_positions: int = 512, seed: int = 0) -> int:
    """Save the model and its tokenizer to ``out``; returns the vocabulary size."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from selftaught.models.tiny import build_tokenizer
    from selftaught.tasks.arithmetic import ALPHABET

    tok = build_tokenizer(ALPHABET)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=max_positions,
                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return len(tok)
