"""``grpo``: Group Relative Policy Optimization (Shao et al. 2024, arXiv 2402.03300)
with TRL's ``GRPOTrainer``, for methods whose training signal is a reward
function rather than target text (TTRL's majority agreement).

Rows are questions: ``prompt`` plus any other columns, which TRL hands to the
reward function as keyword lists (``problem_id=[...]``, ``pseudo_label=[...]``).
The reward function is a plain callable in TRL's signature,
``reward_fn(prompts, completions, **columns) -> list[float]``, given by the method.

Limitation: TRL's GRPOTrainer samples with ``generate`` and scores rollouts with
a forward pass that only knows ordinary positions 0, 1, 2, ...; it has no hook
for task-defined ``position_ids``. Tasks with a ``position_tracker``
(arithmetic's position coupling) are refused with an error rather than trained
with positions the model never saw.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pydantic import Field

from selftaught.trainers import TrainerConfig, scratch_dir


class Config(TrainerConfig):
    objective = "grpo"
    type: str = "grpo"
    lr: float = Field(1e-5, description="peak learning rate")
    batch_size: int = Field(8, description="rollouts per optimizer step (a multiple of num_generations)")
    num_generations: int = Field(4, ge=2, description="rollouts per question (GRPO's group)")
    steps: int = Field(50, description="optimizer steps of one train stage")
    max_completion_length: int = Field(160, description="rollout length in tokens")
    temperature: float = Field(1.0, description="rollout sampling temperature")
    beta: float = Field(0.0, description="KL coefficient against the starting model (TRL default 0)")
    loss_type: str = Field("dapo", description="TRL GRPO loss: grpo, dr_grpo, dapo, bnpo, ...")


class GRPO:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def train(self, init_model: str, rows: list[dict], out_dir: str, *, steps: int | None = None, seed: int = 0,
              position_tracker=None, desc: str = "grpo", reward_fn=None) -> dict:
        if position_tracker is not None:
            raise ValueError("grpo: this task needs custom position ids (position_tracker), and TRL's GRPOTrainer "
                             "cannot pass them to generation or to the policy's forward; refusing to train")
        if reward_fn is None:
            raise ValueError("grpo: the method must pass reward_fn (a callable scoring completions)")
        if not rows:
            raise ValueError("grpo: no prompt rows to train on")
        import transformers
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        from selftaught import hardware
        from selftaught.models.loading import load_pretrained
        from selftaught.trainers import freeze_imports
        from selftaught.trainers.sft import _progress_callback

        freeze_imports()

        transformers.logging.set_verbosity_error()
        c, steps = self.cfg, steps or self.cfg.steps
        model, tok = load_pretrained(init_model, for_training=True)
        data = Dataset.from_list([{k: v for k, v in r.items() if k != "completion"} for r in rows])
        work = scratch_dir("grpo")
        args = GRPOConfig(
            output_dir=str(work), max_steps=steps, per_device_train_batch_size=c.batch_size,
            num_generations=c.num_generations, max_completion_length=c.max_completion_length,
            temperature=c.temperature, beta=c.beta, loss_type=c.loss_type, learning_rate=c.lr,
            logging_steps=1, save_strategy="no", report_to=[], seed=seed, data_seed=seed,
            dataloader_num_workers=0, disable_tqdm=True, **hardware.resolved().trainer_args(),
        )
        trainer = GRPOTrainer(model=model, reward_funcs=[reward_fn], args=args, train_dataset=data,
                              processing_class=tok)
        trainer.remove_callback(transformers.trainer_callback.PrinterCallback)
        trainer.add_callback(_progress_callback(desc))
        t0 = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - t0
        tmp_out = Path(str(out_dir) + ".tmp")
        shutil.rmtree(tmp_out, ignore_errors=True)
        trainer.model.save_pretrained(tmp_out)
        tok.save_pretrained(tmp_out)
        shutil.rmtree(out_dir, ignore_errors=True)
        tmp_out.rename(out_dir)
        shutil.rmtree(work, ignore_errors=True)
        rewards = [h["reward"] for h in trainer.state.log_history if "reward" in h]
        return {"train/steps": steps, "train/rows": len(rows), "train/loss": float(result.training_loss),
                "train/reward_first": rewards[0] if rewards else None,
                "train/reward_last": rewards[-1] if rewards else None, "train/seconds": round(seconds, 2)}


def build(cfg: Config) -> GRPO:
    return GRPO(cfg)
