"""The ``--base`` arm of ``sft_speed.py``: one SFT call through the trainer of another
git revision. Run as a script with that tree's ``src`` on PYTHONPATH, so it imports
nothing of this tree (``sft_speed.py`` itself imports modules older trees lack).

    PYTHONPATH=/tmp/sft-base-42f1f54/src python benchmarks/_sft_base.py JOB.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main(job_file: str) -> None:
    import selftaught
    from selftaught.tasks import arithmetic
    from selftaught.trainers import sft

    if not selftaught.__file__.startswith("/tmp/sft-base-"):
        raise RuntimeError(f"base worker imported {selftaught.__file__}, not the base tree")
    job = json.loads(Path(job_file).read_text())
    tracker = arithmetic.build(arithmetic.Config()).position_tracker
    with tempfile.TemporaryDirectory(prefix="sft-base-") as out:
        t0 = time.perf_counter()
        m = sft.SFT(sft.Config(**job["cfg"])).train(job["model"], job["rows"], str(Path(out) / "ckpt"),
                                                     steps=job["steps"], seed=0, position_tracker=tracker, desc="")
        wall = time.perf_counter() - t0
    print(json.dumps({"train_s": m["train/seconds"], "wall_s": round(wall, 1), "useful_tok_s": m["train/tokens_per_s"],
                      "final_loss": round(m["train/final_loss"], 4)}))


if __name__ == "__main__":
    main(sys.argv[1])
