"""``cluster: ray``: sampling sharded over 2 Ray actors (1 CPU thread each) on a local
cluster gives the same records as the single-process run with the same seeds."""

import pyarrow.parquet as pq
import pytest

from selftaught import config, loop

ray = pytest.importorskip("ray", reason="ray is a test dependency: pip install -e '.[dev]'")

# columns that name the run directory or measure time, not what was sampled
VOLATILE = {"checkpoint"}


def _records(root, k, name):
    rows = pq.read_table(root / f"iter_{k:03d}" / f"{name}.parquet").to_pylist()
    return sorted(({c: v for c, v in r.items() if c not in VOLATILE} for r in rows), key=lambda r: r["sample_id"])


@pytest.fixture
def local_ray():
    """Shut the local cluster down after; the driver trains with 1 thread in both runs
    (as the single-process sampler does), so checkpoints match bit for bit."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    ray.shutdown()


def test_cluster_config_wraps_backend(micro):
    cfg = micro("cluster=ray", "backend.batch_size=32")
    assert cfg.backend.type == "ray" and cfg.backend.backend.type == "hf" and cfg.backend.workers == 2
    assert cfg.backend.backend.batch_size == 32
    again = config.RunConfig.model_validate(cfg.model_dump(mode="json"))  # a saved config is not wrapped twice
    assert again == cfg
    with pytest.raises(config.ConfigError, match="cluster"):
        micro("cluster=spark")


def test_ray_run_has_the_single_process_records(micro, local_ray):
    single = loop.run(micro("name=single", "iterations=1", "backend.threads=1"))
    sharded = loop.run(micro("name=ray", "iterations=1", "backend.threads=1", "cluster.type=ray",
                             "cluster.workers=2", "cluster.cpus_per_worker=1"))
    assert ray.is_initialized() and len(ray.nodes()) == 1  # really ran on the local cluster
    for k, name in [(0, "eval"), (1, "samples"), (1, "eval")]:
        a, b = _records(single.root, k, name), _records(sharded.root, k, name)
        assert len(a) == len(b) > 0
        assert a == b, f"iter {k} {name}: records differ"
    assert {r["backend"] for r in _records(sharded.root, 1, "samples")} == {"hf"}
    assert len({r["completion"] for r in _records(sharded.root, 1, "samples")}) > 5
