"""``sft``: supervised fine-tuning with TRL's ``SFTTrainer`` on prompt/completion
rows, loss on the completion only; full fine-tune or LoRA (PEFT) by config.

LoRA checkpoints are merged into full weights before saving, so every
iteration's checkpoint is an ordinary HF model directory any tool can load.

Each batch is laid out as one row of exactly its tokens, attention computed per
example (``_packing.py``): the same examples per step and the same loss as padding
them.
``packing: false`` gives TRL's padded batches, exactly as before packing existed.

``launch: {num_processes: 2, config_file: ...}`` runs the stage under
``accelerate launch`` (DDP; FSDP/DeepSpeed via the accelerate config), see
``_launch.py``.
"""

from __future__ import annotations

import math
import os
import shutil
import time

from pydantic import Field

from selftaught.component import Section
from selftaught.trainers import TrainerConfig, save_checkpoint, scratch_dir
from selftaught.trainers._launch import LAUNCHED, Launch


class Lora(Section):
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] | str = "all-linear"

    def to_peft(self):
        """PEFT's ``LoraConfig`` for a causal LM (SFT and DPO both train through it)."""
        from peft import LoraConfig

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=self.target_modules, task_type="CAUSAL_LM")


class Config(TrainerConfig):
    type: str = "sft"
    lr: float = Field(1e-3, description="peak learning rate")
    batch_size: int = Field(32, description="examples per optimizer step")
    steps: int = Field(200, description="optimizer steps of one train stage (methods may scale it)")
    warmup_ratio: float = Field(0.05, description="fraction of steps of linear warm-up")
    lr_scheduler: str = Field("cosine", description="any transformers scheduler name")
    weight_decay: float = 0.0
    max_length: int = Field(1024, description="tokens per example; longer ones are truncated")
    lora: Lora | None = Field(None, description="train a LoRA adapter (merged on save) instead of all weights")
    launch: Launch | None = Field(None, description="run the stage under `accelerate launch` (multi-process / multi-GPU)")
    chat_template: bool | None = Field(None, description="train in the model's chat format, as the hf backend samples (None: if it has one)")
    packing: bool = Field(True, description="lay each batch's examples end to end, no padding (same loss; trainers/_packing.py)")


class PositionCollator:
    """Adds task-defined ``position_ids`` (position coupling) to TRL's padded batches.
    TRL's collator only knows ``arange`` positions, hence this small wrapper; each
    example's positions are computed once (``packing.PositionTable``), not every step."""

    def __init__(self, base, positions) -> None:
        self.base, self.positions = base, positions

    def __call__(self, examples):
        import torch

        out = self.base(examples)
        pos = torch.zeros_like(out["input_ids"])
        for row, ex in enumerate(examples):
            p = self.positions(ex["input_ids"])
            pos[row, : len(p)] = torch.from_numpy(p)
        out["position_ids"] = pos
        return out


def _collator(cfg: Config, model, tok, position_tracker):
    """Packed rows (default) or TRL's padded batches; both keep the sampler's batches.
    ``packing=false`` is the padded path exactly as before packing existed."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from selftaught.trainers import _packing as pk

    if cfg.packing and pk.supports_flat(model):  # one row of exactly the batch's tokens, attention per example
        return pk.FlatCollator(pk.PositionTable(tok, position_tracker))
    if cfg.packing:  # a model that does not route attention through transformers' interface: a 4D mask
        return pk.PackingCollator(tok.pad_token_id, pk.PositionTable(tok, position_tracker), pk.attn_tokens_for(model),
                                  pk.mask_dtype_for(model))
    collator = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id)
    return collator if position_tracker is None else PositionCollator(collator, pk.PositionTable(tok, position_tracker))


def _progress_callback(desc: str):
    """A rich progress bar over optimizer steps, instead of the Trainer's tqdm bar
    and printed log dicts. Built on first use: transformers is a heavy import."""
    from transformers import TrainerCallback

    from selftaught.progress import progress_bar

    class ProgressCallback(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            self.cm = progress_bar(desc, state.max_steps, "steps")
            self.bar = self.cm.__enter__()

        def on_step_end(self, args, state, control, **kw):
            self.bar.advance(1)

        def on_train_end(self, args, state, control, **kw):
            self.cm.__exit__(None, None, None)

    return ProgressCallback()


class SFT:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def train(self, init_model: str, rows: list[dict], out_dir: str, *, steps: int | None = None, seed: int = 0,
              position_tracker=None, desc: str = "train") -> dict:
        import transformers
        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        from selftaught import hardware
        from selftaught.models.loading import load_pretrained
        from selftaught.trainers import freeze_imports
        from selftaught.trainers._packing import FlatCollator, use_flat_attention

        freeze_imports()
        if not rows:
            raise ValueError("sft: no training rows (nothing was kept this iteration)")
        if self.cfg.launch is not None and not os.environ.get(LAUNCHED):
            from selftaught.trainers import _launch

            return _launch.run(self.cfg, init_model, rows, out_dir, steps=steps, seed=seed,
                               position_tracker=position_tracker, desc=desc)
        steps = steps or self.cfg.steps
        model, tok = load_pretrained(init_model, for_training=True)
        from selftaught.models.chat import sft_rows

        data = Dataset.from_list(sft_rows(tok, rows, self.cfg.chat_template))
        work = scratch_dir("sft")
        args = SFTConfig(
            output_dir=str(work), max_steps=steps,
            per_device_train_batch_size=max(1, self.cfg.batch_size // int(os.environ.get("WORLD_SIZE", "1"))),
            learning_rate=self.cfg.lr, lr_scheduler_type=self.cfg.lr_scheduler, warmup_steps=self.cfg.warmup_ratio,
            weight_decay=self.cfg.weight_decay, max_length=self.cfg.max_length, completion_only_loss=True,
            logging_steps=max(1, steps // 10), save_strategy="no", report_to=[], seed=seed, data_seed=seed,
            dataloader_num_workers=0, disable_tqdm=True, **hardware.resolved().trainer_args(),
        )
        collator = _collator(self.cfg, model, tok, position_tracker)
        attn_before = None
        if isinstance(collator, FlatCollator):
            attn_before = use_flat_attention(model)
        peft_config = self.cfg.lora.to_peft() if self.cfg.lora is not None else None
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                             data_collator=collator, peft_config=peft_config)
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # it prints every log dict
        trainer.add_callback(_progress_callback(desc))
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
        if not trainer.accelerator.is_main_process:  # under accelerate launch, the main process saves
            shutil.rmtree(work, ignore_errors=True)
            return {}
        final = trainer.model.merge_and_unload() if peft_config is not None else trainer.model
        if attn_before is not None:  # the checkpoint keeps the model's own attention
            final.set_attn_implementation(attn_before)
        save_checkpoint(final, tok, out_dir)
        shutil.rmtree(work, ignore_errors=True)
        return _metrics(trainer, result, steps, self.cfg.batch_size, len(rows), seconds)


def _metrics(trainer, result, steps: int, batch_size: int, n_rows: int, seconds: float) -> dict:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    n_tokens = sum(len(x) for x in trainer.train_dataset["input_ids"])
    epochs = steps * batch_size / max(1, n_rows)
    return {
        "train/steps": steps, "train/rows": n_rows, "train/epochs": round(epochs, 3),
        "train/loss": float(result.training_loss), "train/final_loss": losses[-1] if losses else math.nan,
        "train/first_loss": losses[0] if losses else math.nan,
        "train/seconds": round(seconds, 2),
        "train/tokens_per_s": round(n_tokens * epochs / seconds, 1) if seconds else 0.0,
    }


def build(cfg: Config) -> SFT:
    return SFT(cfg)
