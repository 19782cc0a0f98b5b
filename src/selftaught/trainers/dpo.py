"""``dpo``: Direct Preference Optimization (Rafailov et al. 2023, arXiv 2305.18290)
with TRL's ``DPOTrainer`` on prompt/chosen/rejected rows; full fine-tune or LoRA.

The method says which model is the reference (``ref_model=``): SPIN and
Self-Rewarding use the previous iteration's model, which is also where training
starts, so by default the reference is ``init_model``. β comes from the config
(SPIN and the DPO paper: 0.1).

Tasks with custom position ids (position coupling, ``tasks/arithmetic.py``) are
supported: TRL's preference collator right-pads ``prompt+chosen`` and
``prompt+rejected`` rows and passes every batch key except its masks to both the
policy and the reference forward, so a wrapper that adds ``position_ids`` is
enough (``PositionPairCollator``). LoRA adapters are merged before saving, so a
checkpoint is always an ordinary HF model directory.
"""

from __future__ import annotations

import shutil
import time
from typing import Literal

from pydantic import Field

from selftaught.trainers import TrainerConfig, save_checkpoint, scratch_dir
from selftaught.trainers.sft import Lora


class Config(TrainerConfig):
    objective = "dpo"
    type: str = "dpo"
    beta: float = Field(0.1, description="DPO temperature: how far the policy may move from the reference (SPIN: 0.1)")
    loss_type: Literal["sigmoid", "hinge", "ipo"] = Field("sigmoid", description="sigmoid = DPO; hinge = SLiC; ipo = IPO")
    sft_weight: float = Field(0.0, ge=0, description="add this times the chosen responses' NLL to the loss (TRL's "
                              "loss_type=[..., 'sft']; RPO / DPO-Positive against likelihood displacement); 0: pure DPO")
    lr: float = Field(1e-5, description="peak learning rate (SPIN used 5e-7 on a 7B model; tiny models need more)")
    batch_size: int = Field(8, description="preference pairs per optimizer step")
    steps: int = Field(50, description="optimizer steps of one train stage")
    warmup_ratio: float = Field(0.1, description="fraction of steps of linear warm-up (SPIN: 0.1)")
    lr_scheduler: str = Field("linear", description="any transformers scheduler name")
    max_length: int = Field(1024, description="tokens of prompt+response; longer ones are truncated")
    lora: Lora | None = Field(None, description="train a LoRA adapter (merged on save) instead of all weights")
    chat_template: bool | None = Field(None, description="train in the model's chat format, as the hf backend samples (None: if it has one)")


class PositionPairCollator:
    """Adds task-defined ``position_ids`` to TRL's preference batches. Rows are
    right-padded, so each row's real tokens are the first ``attention_mask.sum()``."""

    def __init__(self, base, tokenizer, tracker_factory) -> None:
        self.base, self.tok, self.factory = base, tokenizer, tracker_factory

    def __call__(self, examples):
        import torch

        out = self.base(examples)
        pos = torch.zeros_like(out["input_ids"])
        for row in range(out["input_ids"].shape[0]):
            n = int(out["attention_mask"][row].sum())
            tracker = self.factory()
            tokens = self.tok.convert_ids_to_tokens(out["input_ids"][row, :n].tolist())
            pos[row, :n] = torch.tensor([tracker.feed(t) for t in tokens])
        out["position_ids"] = pos
        return out


def pair_rows(tok, rows: list[dict], setting: bool | None) -> list[dict]:
    """prompt/chosen/rejected for TRL: plain text, or one user turn and two
    assistant turns when the chat template is used (as ``models/chat.py`` samples)."""
    from selftaught.models.chat import use_template

    if not use_template(tok, setting):
        return [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows]
    return [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows]


def _metrics(trainer, steps: int, n_rows: int, batch_size: int, seconds: float, result) -> dict:
    """``train/`` metrics from TRL's log history; the reward margin is β·(log-ratio of
    chosen − log-ratio of rejected), averaged over the last logged window."""
    logs = [h for h in trainer.state.log_history if "rewards/margins" in h]
    last = logs[-1] if logs else {}
    first = logs[0] if logs else {}
    return {
        "train/steps": steps, "train/rows": n_rows, "train/epochs": round(steps * batch_size / max(1, n_rows), 3),
        "train/loss": float(result.training_loss), "train/seconds": round(seconds, 2),
        "train/reward_margin": float(last.get("rewards/margins", float("nan"))),
        "train/reward_margin_first": float(first.get("rewards/margins", float("nan"))),
        "train/reward_accuracy": float(last.get("rewards/accuracies", float("nan"))),
        "train/logps_chosen": float(last.get("logps/chosen", float("nan"))),
        "train/logps_rejected": float(last.get("logps/rejected", float("nan"))),
    }


class DPO:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def _peft_and_ref(self, init_model: str, ref_path: str):
        """(LoRA config or None, loaded reference model or None). LoRA against its own
        base model needs no second copy: TRL disables the adapter for the reference."""
        from selftaught.models.loading import load_pretrained

        ref = None
        peft_config = self.cfg.lora.to_peft() if self.cfg.lora is not None else None
        if peft_config is None or ref_path != init_model:
            ref, _ = load_pretrained(ref_path)
        return peft_config, ref

    def train(self, init_model: str, rows: list[dict], out_dir: str, *, ref_model: str | None = None,
              steps: int | None = None, seed: int = 0, position_tracker=None, desc: str = "dpo") -> dict:
        """Train ``init_model`` on preference ``rows`` (prompt, chosen, rejected) against
        ``ref_model`` (default: ``init_model``); save an HF model directory at ``out_dir``."""
        import transformers
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer
        from trl.trainer.dpo_trainer import DataCollatorForPreference

        from selftaught import hardware
        from selftaught.models.loading import load_pretrained
        from selftaught.trainers import freeze_imports
        from selftaught.trainers.sft import _progress_callback

        freeze_imports()

        if not rows:
            raise ValueError("dpo: no preference pairs to train on")
        missing = {"prompt", "chosen", "rejected"} - set(rows[0])
        if missing:
            raise ValueError(f"dpo: training rows need prompt/chosen/rejected; missing {sorted(missing)}")
        transformers.logging.set_verbosity_error()
        c, steps = self.cfg, steps or self.cfg.steps
        model, tok = load_pretrained(init_model, for_training=True)
        data = Dataset.from_list(pair_rows(tok, rows, c.chat_template))
        work = scratch_dir("dpo")
        args = DPOConfig(
            output_dir=str(work), max_steps=steps, per_device_train_batch_size=c.batch_size, learning_rate=c.lr,
            lr_scheduler_type=c.lr_scheduler, warmup_steps=c.warmup_ratio, beta=c.beta,
            loss_type=[c.loss_type, "sft"] if c.sft_weight else [c.loss_type],
            loss_weights=[1.0, c.sft_weight] if c.sft_weight else None,
            max_length=c.max_length, logging_steps=max(1, steps // 10), save_strategy="no", report_to=[],
            seed=seed, data_seed=seed, dataloader_num_workers=0, disable_tqdm=True, **hardware.resolved().trainer_args(),
        )
        collator = DataCollatorForPreference(pad_token_id=tok.pad_token_id, max_length=c.max_length)
        if position_tracker is not None:
            collator = PositionPairCollator(collator, tok, position_tracker)
        ref_path = ref_model or init_model
        peft_config, ref = self._peft_and_ref(init_model, ref_path)
        trainer = DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=data, processing_class=tok,
                             data_collator=collator, peft_config=peft_config)
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        trainer.add_callback(_progress_callback(desc))
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
        final = trainer.model.merge_and_unload() if peft_config is not None else trainer.model
        save_checkpoint(final, tok, out_dir)
        shutil.rmtree(work, ignore_errors=True)
        return {**_metrics(trainer, steps, len(rows), c.batch_size, seconds, result),
                "train/init": init_model, "train/ref_model": ref_path}


def build(cfg: Config) -> DPO:
    return DPO(cfg)
