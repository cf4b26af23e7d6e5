"""Shard tasks in sandboxed containers on a local or remote Docker Engine, one container per core.

Each of ``workers`` long-lived containers (``workbench.containers.pool``) takes shards over its
attached stdin and frames each shard's output on stdout (``workbench.containers.workers``); the
thread mechanism (``workbench.backends.threads``) hands shards out largest first. Containers serve any
job on their image and dataset and live as long as the backend (removed by ``close()``, at
exit, on any error or interrupt, and by the engine when the client dies). Measured against
one container per shard (``mode="per-shard"``) in ``benchmarks/docker``.
Grep jobs run their real command in the image the image map gives their engine; Python jobs
run ``python -m workbench.containers.worker`` in the rdkit image.

Given several ``engines`` (a cluster's nodes: ``workbench.cluster.backends``), each engine gets its
own pools (at most one container per core of that node); ``targets`` says which engine runs each
shard and where the dataset lives on its host, and one thread runs per core of those nodes.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.backends.base import Backend
from workbench.backends.threads import stream_threads
from workbench.containers.build import SOURCE_LABEL, source_digest
from workbench.containers.imagemap import load_image_map
from workbench.containers.pool import ContainerPool, Engine, check_readable, open_engine
from workbench.containers.workers import MOUNT, wait_gone
from workbench.errors import BackendError, EngineNotFound
from workbench.jobs.base import Job, ShardResult, ShardTask, shard_result

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest

MODES = ("pool", "per-shard")


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, workers: int | None = None, docker_host: str | None = None, image: str | None = None,
                 mode: str = "pool", memory: str | None = None, engines: list[Engine] | None = None,
                 insecure_engine: bool = False):
        super().__init__(workers)
        if mode not in MODES:
            raise BackendError(f"unknown docker mode {mode!r} (choose from {', '.join(MODES)})")
        self.image, self.mode, self.memory = image, mode, memory
        #: One per engine, by node name (a single engine is named as it names itself).
        self.engines: dict[str, Engine] = {}
        if engines:
            self.engines = {e.node: e for e in engines}
            self.workers = sum(e.cores for e in engines)  # one thread per container
        else:
            engine = open_engine(None, docker_host, self.workers, insecure_engine)
            self.engines[engine.node] = engine
        # the first (with one engine, the only) engine: benchmarks and `bench images` use these
        first = next(iter(self.engines.values()))
        self.url, self.client, self.arch, self.node = first.url, first.client, first.arch, first.node
        self.images = load_image_map()
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix="workbench-docker")
        #: (node, engine, image, dataset root there, memory, python) -> pool
        self._pools: dict[tuple[str, str, str, str, str, bool], ContainerPool] = {}
        #: Seconds the last run spent starting its slowest container (its fixed cost).
        self.last_startup_s = 0.0

    def describe(self) -> str:
        where = ",".join(self.engines) if len(self.engines) > 1 else self.url
        return f"docker:{self.workers}@{where}"

    def prepare(self, job: Job, manifest: "Manifest") -> list[str]:
        """The job's checks, except that its tool need not be on this host: the image brings it."""
        try:
            return job.prepare(manifest)
        except EngineNotFound:
            return []

    def where(self, engine: Engine) -> tuple[str, str]:
        """How errors name an engine, and the build command that fixes a missing image there."""
        return f"the Docker engine at {engine.url}", "workbench images build{only}"

    def resolve_image(self, job: Job, engine: "Engine | None" = None) -> tuple[str, str]:
        """(tag, memory limit) of the image that runs ``job`` on an engine (default: the first);
        missing -> BackendError."""
        import docker

        engine = engine or next(iter(self.engines.values()))
        name = self.image or self.images.for_job(job).name
        spec = self.images.images.get(name)
        tag = spec.tag_for(engine.arch) if spec else name  # --image may also be a plain tag
        where, fix = self.where(engine)
        fix = "run `" + fix.format(only=f" --only {spec.name}" if spec else "") + "`"
        try:
            image = engine.client.images.get(tag)
        except docker.errors.ImageNotFound:
            raise BackendError(f"image {tag} is not on {where}: {fix}") from None
        if spec and spec.wheelhouse and (image.labels or {}).get(SOURCE_LABEL) != source_digest():
            raise BackendError(f"image {tag} on {where} carries another version of the workbench jobs "
                               f"than this one: {fix}")
        return tag, self.memory or (spec.memory if spec else "1g")

    def targets(self, root: Path, manifest: "Manifest") -> dict[str, tuple[Engine, str]]:
        """Each shard's engine and the dataset directory as that engine's host sees it."""
        engine = next(iter(self.engines.values()))
        if engine.url.startswith("unix://"):
            check_readable(Path(root), manifest)
        return {s.name: (engine, str(root)) for s in manifest.shards}

    def map_shards(self, job: Job, root: Path, manifest: "Manifest") -> Iterator[ShardResult]:
        targets = self.targets(root, manifest)
        images = {e.node: self.resolve_image(job, e) for e, _ in set(targets.values())}
        python = job.command(ShardTask(MOUNT, manifest.shards[0])) is None if manifest.shards else False
        pool_of: dict[str, ContainerPool] = {}
        used: dict[tuple[str, str, str, str, str, bool], ContainerPool] = {}
        for shard, (engine, node_root) in targets.items():
            tag, memory = images[engine.node]
            key = (engine.node, engine.url, tag, node_root, memory, python)
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = ContainerPool(engine.client, tag, sandbox_root=node_root, memory=memory,
                                                        python=python, one_shot=self.mode == "per-shard",
                                                        limit=engine.cores,
                                                        local_outputs=engine.url.startswith("unix://"))
            pool_of[shard] = used[key] = pool
        for pool in used.values():
            pool.startup_s.clear()

        def run_one(task: ShardTask) -> ShardResult:
            output, worker, seconds = pool_of[task.shard.name].run(job, task)
            return shard_result(task, output, seconds, worker, targets[task.shard.name][0].node)

        def stop() -> None:  # error, Ctrl-C or the consumer stopped: workers may be mid-shard
            for key, pool in used.items():
                self._pools.pop(key, None)
                pool.close()  # in-flight shards fail fast once their container is gone

        try:
            yield from stream_threads(self._threads, run_one, self.tasks(Path(MOUNT), manifest.shards),
                                      on_stop=stop)
        except BaseException:
            for pool in used.values():
                wait_gone(pool.client, pool.pool_id)
            raise
        finally:
            self.last_startup_s = max((t for pool in used.values() for t in pool.startup_s), default=0.0)

    def close(self) -> None:
        """Stop every worker container (the engine deletes them: ``auto_remove``, so a command's exit
        does not wait on removal), stop the threads, close the engine clients."""
        while self._pools:
            _, pool = self._pools.popitem()
            pool.close(wait=False)
        self._threads.shutdown(wait=True, cancel_futures=True)
        for engine in self.engines.values():
            engine.client.close()
