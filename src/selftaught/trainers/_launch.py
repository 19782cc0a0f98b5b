"""Multi-process training: one train stage under ``accelerate launch``.

``trainer.launch`` in a recipe (``sft``) runs the stage as
``accelerate launch [--config_file F] --num_processes N -m selftaught.trainers._launch JOB``
in a subprocess: DDP over N processes (gloo on CPU, NCCL on GPUs), or FSDP /
DeepSpeed when the accelerate config file says so (its settings pass through
untouched, as do ``launch.args``). Every process runs the same ``SFT.train`` on
the same rows; TRL's Trainer shards the batches, so ``batch_size`` stays the
examples per optimizer step (per process: ``batch_size / N``). Only the main
process saves the checkpoint and writes the metrics the loop records.

Tested with 2 CPU processes on the tiny model (``tests/integration/test_accelerate.py``).
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

LAUNCHED = "SELFTAUGHT_LAUNCHED"  # set in the launched processes: train in-process there


class Launch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    num_processes: int | None = Field(2, ge=1, description="processes (GPUs; CPU processes on a CPU box); None: from config_file")
    config_file: str | None = Field(None, description="an `accelerate config` file (FSDP, DeepSpeed, multi-node ...)")
    args: list[str] = Field([], description="more `accelerate launch` flags, passed through")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(launch: Launch, job: str) -> list[str]:
    """The ``accelerate launch`` command line of one train stage."""
    from selftaught import hardware

    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.config_file:
        cmd += ["--config_file", launch.config_file]
    else:  # plain DDP: torchrun-style processes; on CPU they join over gloo
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
        if hardware.resolved().device == "cpu":
            cmd += ["--main_process_port", str(_free_port())]
    if launch.num_processes:
        cmd += ["--num_processes", str(launch.num_processes)]
    return [*cmd, *launch.args, "-m", "selftaught.trainers._launch", job]


def run(cfg, init_model: str, rows: list[dict], out_dir: str, **kwargs) -> dict:
    """Run ``SFT.train`` under ``accelerate launch`` and return the main process's metrics."""
    tracker = kwargs.pop("position_tracker", None)
    work = Path(tempfile.mkdtemp(prefix="selftaught-launch-"))
    job = {
        "cfg": cfg.model_dump(mode="json") | {"launch": None}, "init_model": init_model, "out_dir": str(out_dir),
        # pickled, not named by module:qualname: a tracker may be a partial with its own
        # seeded stream (arithmetic's position_gaps); the job file is ours, in a private temp dir
        "tracker": base64.b64encode(pickle.dumps(tracker)).decode() if tracker else None,
        "metrics": str(work / "metrics.json"), "kwargs": kwargs,
    }
    (work / "rows.jsonl").write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))
    (work / "job.json").write_text(json.dumps(job))
    env = {**os.environ, LAUNCHED: "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(command(cfg.launch, str(work / "job.json")), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not (work / "metrics.json").is_file():
        raise RuntimeError(f"sft: `accelerate launch` failed (exit {proc.returncode}); its last output:\n"
                           + "\n".join(proc.stdout.splitlines()[-30:]))
    metrics = json.loads((work / "metrics.json").read_text())
    for f in work.iterdir():
        f.unlink()
    work.rmdir()
    return metrics


def main(job_path: str) -> None:
    from selftaught.trainers.sft import SFT, Config

    job = json.loads(Path(job_path).read_text())
    rows = [json.loads(line) for line in (Path(job_path).parent / "rows.jsonl").read_text().splitlines()]
    tracker = pickle.loads(base64.b64decode(job["tracker"])) if job["tracker"] else None
    metrics = SFT(Config.model_validate(job["cfg"])).train(job["init_model"], rows, job["out_dir"],
                                                           position_tracker=tracker, **job["kwargs"])
    if metrics:  # the main process
        metrics["train/processes"] = int(os.environ.get("WORLD_SIZE", "1"))
        Path(job["metrics"]).write_text(json.dumps(metrics))


if __name__ == "__main__":
    main(sys.argv[1])
