"""recipes/sizes/: one recipe at three sizes -- valid, and only the scale sections differ."""

from pathlib import Path

from selftaught import config

SIZES = Path(__file__).parents[2] / "recipes" / "sizes"


def test_three_sizes_validate_and_share_task_and_method():
    cfgs = {p.stem: config.load(p) for p in sorted(SIZES.glob("*.yaml"))}
    assert set(cfgs) == {"laptop", "gpu_box", "cluster"}
    for name in ("gpu_box", "cluster"):
        assert cfgs[name].task == cfgs["laptop"].task and cfgs[name].method == cfgs["laptop"].method
    assert cfgs["laptop"].backend.type == "hf" and cfgs["laptop"].trainer.launch is None
    assert cfgs["gpu_box"].backend.type == "vllm" and cfgs["gpu_box"].trainer.launch.num_processes >= 1
    cluster = cfgs["cluster"]
    assert cluster.backend.type == "ray" and cluster.backend.backend.type == "vllm"
    assert cluster.backend.gpus_per_worker == 1 and cluster.trainer.launch is not None
