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
own pools (at most one container per core of that node); ``candidates`` says which engines may run
each shard and where the dataset lives on their hosts. Each attempt takes a free slot on one of its
shard's engines when it starts (the least busy; not one its shard already failed on, nor one whose
engine stopped answering), so a slow node is relieved and a dead engine's shards run elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.backends.base import Backend
from workbench.backends.retry import RetryPolicy, ShardFailure, Tries
from workbench.backends.threads import stream_threads
from workbench.containers.build import SOURCE_LABEL, image_arch, source_digest
from workbench.containers.engine import connect
from workbench.containers.imagemap import PLATFORMS, load_image_map, parse_platform
from workbench.containers.pool import ContainerPool, Engine, check_readable, open_engine
from workbench.containers.workers import MOUNT, WorkerContainer, wait_gone
from workbench.errors import BackendError, EngineNotFound
from workbench.jobs.base import Job, ShardResult, ShardTask, shard_result
from workbench.util.scope import clock_stopped

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest

MODES = ("pool", "per-shard")


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, workers: int | None = None, docker_host: str | None = None, image: str | None = None,
                 mode: str = "pool", memory: str | None = None, engines: list[Engine] | None = None,
                 insecure_engine: bool = False, platform: str | None = None):
        super().__init__(workers)
        if mode not in MODES:
            raise BackendError(f"unknown docker mode {mode!r} (choose from {', '.join(MODES)})")
        self.image, self.mode, self.memory = image, mode, memory
        #: Run the images of this architecture on every engine (None: each engine's own; another runs emulated).
        self.platform = parse_platform(platform) if platform else None
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
        # one thread per container; across nodes twice that, so that threads waiting for a slot on
        # their shard's nodes never keep another node's free slot idle
        threads = self.workers if len(self.engines) == 1 else 2 * self.workers
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="workbench-docker")
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
        """(tag, memory limit) of the image that runs ``job`` on an engine (default: the first), for
        ``platform`` or else the engine's architecture; missing or of another architecture -> BackendError."""
        import docker

        engine = engine or next(iter(self.engines.values()))
        arch = self.platform or engine.arch
        name = self.image or self.images.for_job(job).name
        spec = self.images.images.get(name)
        tag = spec.tag_for(arch) if spec else name  # --image may also be a plain tag
        where, fix = self.where(engine)
        fix = "run `" + fix.format(only=f" --only {spec.name}" if spec else "") \
            + ("" if arch == engine.arch else f" --platform {PLATFORMS[arch]}") + "`"
        try:
            image = engine.client.images.get(tag)
        except docker.errors.ImageNotFound:
            raise BackendError(f"image {tag} is not on {where}: {fix}") from None
        built_for = image_arch(image.attrs)
        if built_for and built_for != arch:
            raise BackendError(f"image {tag} on {where} is built for {built_for}, not {arch}: "
                               + (fix if spec else f"pass --platform {PLATFORMS[built_for]} to run it emulated"))
        if spec and spec.wheelhouse and (image.labels or {}).get(SOURCE_LABEL) != source_digest():
            raise BackendError(f"image {tag} on {where} carries another version of the workbench jobs "
                               f"than this one: {fix}")
        return tag, self.memory or (spec.memory if spec else "1g")

    def candidates(self, root: Path, manifest: "Manifest") -> dict[str, list[tuple[Engine, str]]]:
        """Each shard's engines that may run it, with the dataset directory as each engine's host sees it."""
        engine = next(iter(self.engines.values()))
        if engine.url.startswith("unix://"):
            check_readable(Path(root), manifest)
        return {s.name: [(engine, str(root))] for s in manifest.shards}

    def map_shards(self, job: Job, root: Path, manifest: "Manifest",
                   policy: RetryPolicy = RetryPolicy()) -> Iterator[ShardResult | ShardFailure]:
        candidates = self.candidates(root, manifest)
        engines = {e.node: e for options in candidates.values() for e, _ in options}
        images = {node: self.resolve_image(job, e) for node, e in engines.items()}  # before any shard runs
        python = job.command(ShardTask(MOUNT, manifest.shards[0])) is None if manifest.shards else False
        used: dict[tuple[str, str, str, str, str, bool], ContainerPool] = {}
        pools: dict[str, list[tuple[Engine, ContainerPool]]] = {}
        for shard, options in candidates.items():
            for engine, node_root in options:
                tag, memory = images[engine.node]
                key = (engine.node, engine.url, tag, node_root, memory, python)
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = ContainerPool(engine.client, tag, sandbox_root=node_root, memory=memory,
                                                            python=python, one_shot=self.mode == "per-shard",
                                                            limit=engine.cores,
                                                            local_outputs=engine.url.startswith("unix://"))
                used[key] = pool
                pools.setdefault(shard, []).append((engine, pool))
        for pool in used.values():
            pool.startup_s.clear()
        down: set[str] = set()  # nodes whose engine stopped answering during this run

        def run_one(task: ShardTask, tries: Tries) -> ShardResult:
            try:
                with clock_stopped():  # the shard timeout counts from when a container serves it
                    engine, pool, worker = _slot(pools[task.shard.name], tries, down)
                output, name, seconds = pool.run(job, task, worker)
            except Exception:  # on the engine ``_slot`` last tried (``tries.node``)
                if tries.node and tries.node not in down and not _answers(engines[tries.node]):
                    down.add(tries.node)
                raise
            return shard_result(task, output, seconds, name, engine.node)

        def stop() -> None:  # error, Ctrl-C or the consumer stopped: workers may be mid-shard
            for key, pool in used.items():
                self._pools.pop(key, None)
                pool.close()  # in-flight shards fail fast once their container is gone

        try:
            yield from stream_threads(self._threads, run_one, self.tasks(Path(MOUNT), manifest.shards),
                                      on_stop=stop, policy=policy)
        except BaseException:
            for key, pool in used.items():
                if key[0] not in down:
                    wait_gone(pool.client, pool.pool_id)
            raise
        finally:
            self.last_startup_s = max((t for pool in used.values() for t in pool.startup_s), default=0.0)
            for key in [k for k in used if k[0] in down]:  # a dead engine's containers are gone with it
                pool = self._pools.pop(key, None)
                if pool is not None:
                    pool.close(wait=False)

    def close(self) -> None:
        """Stop every worker container (the engine deletes them: ``auto_remove``, so a command's exit
        does not wait on removal), stop the threads, close the engine clients."""
        while self._pools:
            _, pool = self._pools.popitem()
            pool.close(wait=False)
        self._threads.shutdown(wait=True, cancel_futures=True)
        for engine in self.engines.values():
            engine.client.close()


def _slot(options: list[tuple[Engine, ContainerPool]], tries: Tries,
          down: set[str]) -> tuple[Engine, ContainerPool, WorkerContainer]:
    """A container for this attempt, on the least busy of the shard's engines that has a free slot:
    engines the shard failed on, or that stopped answering, only when there is no other."""
    fresh = [o for o in options if o[0].node not in tries.failed_nodes and o[0].node not in down]
    alive = [o for o in options if o[0].node not in down]
    choice = fresh or alive or options
    while True:
        for engine, pool in sorted(choice, key=lambda o: o[1].busy()):
            tries.node = engine.node  # a failure to start a container there is that engine's
            worker = pool.acquire(block=False)
            if worker is not None:
                return engine, pool, worker
        time.sleep(0.02)


def _answers(engine: Engine) -> bool:
    """Whether an engine still answers (checked after a failed attempt, with a short timeout)."""
    try:
        connect(engine.url, timeout=5, insecure=True).close()  # (whether to trust it was settled at the start)
    except BackendError:
        return False
    return True
