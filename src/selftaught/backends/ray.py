"""``ray``: any backend, replicated over Ray actors, prompts sharded over them.

A recipe does not name this type itself: ``cluster: ray`` (``config.py``) wraps
the recipe's ``backend:`` section in it, so the same recipe runs in one process
or on a cluster and ``loop.py`` does not change. The cluster is
``cluster.address``, else ``$RAY_ADDRESS``, else a local one started here.

Each actor holds one replica of the inner backend (``hf`` with
``cpus_per_worker`` torch threads, or ``vllm`` with ``gpus_per_worker``
GPUs) and reloads it when the checkpoint changes. One ``sample`` call is cut
into contiguous shards, one per actor, and each shard is told its global index
offset: ``hf`` and ``vllm`` seed prompt i's samples from (seed, i), so a
sharded call returns what the unsharded call would (tested in
``tests/integration/test_ray.py``). Records name the inner backend (``hf``),
since that is what sampled. On a multi-node cluster every node needs
selftaught installed and the checkpoint directory on a shared filesystem.
"""

from __future__ import annotations

import os

from pydantic import Field, SerializeAsAny, field_validator

from selftaught.component import Component


class Config(Component):
    type: str = "ray"
    backend: SerializeAsAny[Component] = Field(description="the backend each worker runs (hf, vllm, ...)")
    address: str | None = Field(None, description="Ray cluster address (default: $RAY_ADDRESS, else a local cluster)")
    workers: int = Field(2, ge=1, description="backend replicas (Ray actors)")
    cpus_per_worker: float = Field(1.0, description="CPUs per replica (also its torch threads)")
    gpus_per_worker: float = Field(0.0, description="GPUs per replica")

    @field_validator("backend", mode="before")
    @classmethod
    def _inner(cls, value):
        from selftaught import registry

        if isinstance(value, Component):
            return value
        value = {"type": value} if isinstance(value, str) else value
        if not isinstance(value, dict) or "type" not in value:
            raise ValueError("must be a backend section with a `type:` key, e.g. `{type: hf}`")
        if value["type"] == "ray":
            raise ValueError("a ray backend cannot wrap another ray backend")
        return registry.load("backend", value["type"]).Config.model_validate(value)


class _Replica:
    """One backend replica inside a Ray actor."""

    def __init__(self, cfg: Component, threads: int) -> None:
        import torch

        from selftaught import registry

        torch.set_num_threads(max(1, threads))
        self.backend = registry.build("backend", cfg)

    def load(self, model_path: str, position_tracker=None) -> None:
        self.backend.load(model_path, position_tracker)

    def sample(self, prompts: list[str], n: int, kwargs: dict, offset: int) -> list[list[str]]:
        return self.backend.sample(prompts, n, index_offset=offset, desc="", **kwargs)


class RayBackend:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.name = cfg.backend.type  # what sampled, as the records should say
        self.actors: list = []
        self.loaded: tuple | None = None

    def _start(self) -> None:
        import ray

        c = self.cfg
        if not ray.is_initialized():
            address = c.address or os.environ.get("RAY_ADDRESS")
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # a local cluster sized for the workers
                ray.init(num_cpus=max(1, round(c.workers * c.cpus_per_worker)), num_gpus=round(c.workers * c.gpus_per_worker),
                         include_dashboard=False, log_to_driver=False)
        actor = ray.remote(num_cpus=c.cpus_per_worker, num_gpus=c.gpus_per_worker)(_Replica)
        self.actors = [actor.remote(c.backend, int(c.cpus_per_worker)) for _ in range(c.workers)]

    def load(self, model_path: str, position_tracker=None) -> None:
        import ray

        if not self.actors:
            self._start()
        if self.loaded != (model_path, position_tracker):
            ray.get([a.load.remote(model_path, position_tracker) for a in self.actors])
            self.loaded = (model_path, position_tracker)

    def sample(self, prompts: list[str], n: int, *, temperature: float, top_p: float = 1.0, max_new_tokens: int,
               seed: int, desc: str = "sample", index_offset: int = 0) -> list[list[str]]:
        import ray

        from selftaught.progress import progress_bar

        if not self.actors or self.loaded is None:
            raise RuntimeError("ray backend: load() a model before sample()")
        kwargs = dict(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, seed=seed)
        size = -(-len(prompts) // len(self.actors)) if prompts else 1
        shards = [(s, prompts[s : s + size]) for s in range(0, len(prompts), size)]
        futures = [a.sample.remote(chunk, n, kwargs, index_offset + s) for a, (s, chunk) in zip(self.actors, shards)]
        out: list[list[str]] = []
        with progress_bar(desc, total=len(prompts) * n, unit="samples") as bar:
            for f, (_, chunk) in zip(futures, shards):
                out += ray.get(f)
                bar.advance(len(chunk) * n)
        return out

    def close(self) -> None:
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors, self.loaded = [], None


def build(cfg: Config) -> RayBackend:
    return RayBackend(cfg)
