"""``trainer.launch``: the SFT stage under ``accelerate launch`` with 2 CPU processes
(DDP over gloo) on a tiny Llama: a checkpoint that loads, and the loss goes down."""

import torch

from selftaught.models import tiny
from selftaught.models.loading import load_pretrained
from selftaught.tasks import arithmetic
from selftaught.trainers import _launch, sft


def test_two_process_ddp_training(tmp_path):
    task = arithmetic.build(arithmetic.Config(seed_size=256))
    init = tmp_path / "init"
    tiny._init_model(task, seed=0).save_pretrained(init)
    tiny.build_tokenizer(task.alphabet).save_pretrained(init)
    rows = [{"prompt": task.prompt(p), "completion": p.rationale} for p in task.seed_set()]
    cfg = sft.Config(lr=3e-3, batch_size=16, steps=30, warmup_ratio=0.0, launch={"num_processes": 2})
    cmd = _launch.command(cfg.launch, "job.json")
    assert "--num_processes" in cmd and cmd[cmd.index("--num_processes") + 1] == "2"
    out = tmp_path / "ckpt"
    metrics = sft.build(cfg).train(str(init), rows, str(out), steps=30, seed=0,
                                   position_tracker=task.position_tracker)
    assert metrics["train/processes"] == 2  # really two ranks
    assert metrics["train/final_loss"] < 0.7 * metrics["train/first_loss"]
    model, tok = load_pretrained(str(out))
    before, _ = load_pretrained(str(init))
    changed = [not torch.equal(a, b) for a, b in zip(model.state_dict().values(), before.state_dict().values())]
    assert all(changed)
    ids = tok(task.prompt(task.seed_set()[0]), return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(ids).logits).all()
