"""Chat templates, applied the same way at sampling and at training time.

A task's prompt is plain text (the user's message). For a model whose tokenizer
has a chat template (instruct models), the ``hf`` backend renders it as one user
turn plus the assistant header before tokenizing, and the ``sft`` trainer gives
TRL the same turn as a conversational prompt/completion pair -- so the model is
trained on exactly the text it is sampled with, and learns to close its turn
(``<|im_end|>``). ``setting``: True = always (error if there is no template),
False = never, None = when the tokenizer has one.
"""

from __future__ import annotations


def use_template(tok, setting: bool | None) -> bool:
    has = bool(getattr(tok, "chat_template", None))
    if setting and not has:
        raise ValueError(f"chat_template=true, but the tokenizer of {getattr(tok, 'name_or_path', '?')} has no chat template")
    return has if setting is None else bool(setting)


def render_prompt(tok, prompt: str, setting: bool | None) -> str:
    """The exact text the model is fed for ``prompt`` (tokenized without special
    tokens). Without a template, a tokenizer that adds BOS by itself (Gemma) gets
    it here, as TRL's tokenization gives it at training time."""
    if not use_template(tok, setting):
        bos = getattr(tok, "bos_token", None)
        if bos and not prompt.startswith(bos) and tok("x")["input_ids"][:1] == [tok.bos_token_id]:
            return bos + prompt
        return prompt
    return tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def sft_rows(tok, rows: list[dict], setting: bool | None) -> list[dict]:
    """Training rows for TRL: plain prompt/completion text, or conversational
    message lists when the chat template is used."""
    if not use_template(tok, setting):
        return [{"prompt": r["prompt"], "completion": r["completion"]} for r in rows]
    return [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "completion": [{"role": "assistant", "content": r["completion"]}]} for r in rows]
