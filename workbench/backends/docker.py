"""Shard tasks in sandboxed containers on a local or remote Docker Engine, one container per core.

Each of ``workers`` long-lived containers pulls shards from the queue over its attached stdin
and frames each shard's output on stdout (``workbench.containers.workers``); Dask's threaded
scheduler (through the local backend) hands shards out largest first. Containers serve any
job on their image and dataset and live as long as the backend (removed by ``close()``, at
exit, on any error or interrupt, and by the engine when the client dies). Measured against
one container per shard (``mode="per-shard"``) in ``benchmarks/docker``.
Grep jobs run their real command in the image the image map gives their engine; Python jobs
run ``python -m workbench.worker`` in the rdkit image.

With ``cluster=FILE`` every node that has a ``docker`` engine URL gets its own client and pools
(at most one container per core of that node); each shard goes to one node holding it (the least
loaded by bytes per core), whose container mounts that node's copy of the dataset, and the
threaded scheduler runs one thread per core of those nodes.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from docker.utils import parse_bytes

from workbench.backends.base import Backend
from workbench.containers.build import SOURCE_LABEL, source_digest
from workbench.containers.engine import connect, engine_url
from workbench.containers.imagemap import load_image_map, normalize_arch
from workbench.containers.workers import MOUNT, RUN_LABEL, SHELL_LOOP, WorkerContainer, sandbox, wait_gone
from workbench.errors import BackendError, EngineNotFound, JobError, QueryError
from workbench.jobs.base import Job, ShardOutput, ShardResult, ShardTask

if TYPE_CHECKING:
    from workbench.dataset.manifest import Manifest

MODES = ("pool", "per-shard")
OK_STATUS = (0, 1)  # grep: 0 matches, 1 none; 2 and up is an error


class DockerBackend(Backend):
    name = "docker"

    def __init__(self, workers: int | None = None, docker_host: str | None = None, image: str | None = None,
                 cluster: str | None = None, mode: str = "pool", memory: str | None = None):
        super().__init__(workers)
        if mode not in MODES:
            raise BackendError(f"unknown docker mode {mode!r} (choose from {', '.join(MODES)})")
        if cluster and docker_host:
            raise BackendError("--docker-host does not apply with --cluster: each node's engine is its `docker` URL")
        self.image, self.mode, self.memory, self.cluster = image, mode, memory, cluster
        #: One per engine, by node name (a single engine is named as it names itself).
        self.engines: dict[str, Engine] = {}
        if cluster:
            self._connect_nodes(cluster)
            self.workers = sum(e.cores for e in self.engines.values())  # one scheduler thread per container
        else:
            engine = open_engine(None, docker_host, self.workers)
            self.engines[engine.node] = engine
        # the first (without a cluster, the only) engine: benchmarks and `bench images` use these
        first = next(iter(self.engines.values()))
        self.url, self.client, self.arch, self.node = first.url, first.client, first.arch, first.node
        self.images = load_image_map()
        from workbench.backends.local import LocalBackend

        self._scheduler = LocalBackend(self.workers)
        #: (node, engine, image, dataset root there, memory, python) -> pool
        self._pools: dict[tuple[str, str, str, str, str, bool], ContainerPool] = {}
        #: Seconds the last run spent starting its slowest container (its fixed cost).
        self.last_startup_s = 0.0

    def _connect_nodes(self, cluster_file: str) -> None:
        """A client for the engine of every node that names one; unreachable -> BackendError naming the node."""
        from workbench.cluster.inventory import load_cluster

        cluster = load_cluster(cluster_file)
        nodes = [n for n in cluster.nodes if n.docker]
        if not nodes:
            raise BackendError(f"no node of {cluster.path} has a `docker` engine URL")
        try:
            for node in nodes:
                try:
                    self.engines[node.name] = open_engine(node.name, node.docker, node.cores)
                except BackendError as exc:
                    raise BackendError(f"node {node.name!r}: {exc}") from None
        except BaseException:
            for engine in self.engines.values():
                engine.client.close()
            raise

    def describe(self) -> str:
        where = ",".join(self.engines) if self.cluster else self.url
        return f"docker:{self.workers}@{where}"

    def prepare(self, job: Job, manifest: "Manifest") -> None:
        """The job's checks, except that its tool need not be on this host: the image brings it."""
        try:
            job.prepare(manifest)
        except EngineNotFound:
            pass

    def resolve_image(self, job: Job, engine: "Engine | None" = None) -> tuple[str, str]:
        """(tag, memory limit) of the image that runs ``job`` on an engine (default: the first);
        missing -> BackendError."""
        import docker

        engine = engine or next(iter(self.engines.values()))
        name = self.image or self.images.for_job(job).name
        spec = self.images.images.get(name)
        tag = spec.tag_for(engine.arch) if spec else name  # --image may also be a plain tag
        only = f" --only {spec.name}" if spec else ""
        where, fix = f"the Docker engine at {engine.url}", f"run `workbench images build{only}`"
        if self.cluster:
            where = f"the Docker engine of node {engine.node!r} ({engine.url})"
            fix = f"run `workbench images build{only} --docker-host {engine.url}`"
        try:
            image = engine.client.images.get(tag)
        except docker.errors.ImageNotFound:
            raise BackendError(f"image {tag} is not on {where}: {fix}") from None
        if spec and spec.wheelhouse and (image.labels or {}).get(SOURCE_LABEL) != source_digest():
            raise BackendError(f"image {tag} on {where} carries another version of the workbench jobs "
                               f"than this one: {fix}")
        return tag, self.memory or (spec.memory if spec else "1g")

    def targets(self, root: Path, manifest: "Manifest") -> dict[str, tuple["Engine", str]]:
        """Each shard's engine and the dataset directory as that engine's host sees it.

        With a cluster: one node holding the shard, the least loaded by bytes per core (largest
        shards first)."""
        if not self.cluster:
            engine = next(iter(self.engines.values()))
            if engine.url.startswith("unix://"):
                check_readable(Path(root), manifest)
            return {s.name: (engine, str(root)) for s in manifest.shards}
        from workbench.cluster.locality import docker_targets

        load = dict.fromkeys(self.engines, 0)
        chosen: dict[str, tuple[Engine, str]] = {}
        for task, nodes in docker_targets(Path(root), manifest, self.cluster):
            engines = [self.engines[n.name] for n in nodes]
            best = min(engines, key=lambda e: (load[e.node] + task.shard.bytes) / e.cores)
            load[best.node] += task.shard.bytes
            chosen[task.shard.name] = (best, task.root)
        for engine, node_root in set(chosen.values()):
            if engine.url.startswith("unix://") and Path(node_root).is_dir():  # this host's engine: check here
                check_readable(Path(node_root), manifest)
        return chosen

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
                                                        limit=engine.cores)
            pool_of[shard] = used[key] = pool
        adapter = InContainers(job, pool_of)
        inner = self._scheduler.map_shards(adapter, Path(MOUNT), manifest)
        for pool in used.values():
            pool.startup_s.clear()
        finished = False
        try:
            for result in inner:
                result.worker = adapter.worker_of.get(result.shard, result.worker)
                result.node = targets[result.shard][0].node
                yield result
            finished = True
        finally:
            if not finished:  # error, Ctrl-C or the consumer stopped: workers may be mid-shard
                for key, pool in used.items():
                    self._pools.pop(key, None)
                    pool.close()  # in-flight shards fail fast once their container is gone
            inner.close()
            if not finished:
                for pool in used.values():
                    wait_gone(pool.client, pool.pool_id)
            self.last_startup_s = max((t for pool in used.values() for t in pool.startup_s), default=0.0)

    def close(self) -> None:
        """Remove every worker container, stop the scheduler, close the engine clients."""
        while self._pools:
            _, pool = self._pools.popitem()
            pool.close()
            wait_gone(pool.client, pool.pool_id)
        self._scheduler.close()
        for engine in self.engines.values():
            engine.client.close()


@dataclass(frozen=True, eq=False)
class Engine:
    """One Docker engine: the node whose name results carry, its URL and client, arch and containers at most."""

    node: str
    url: str
    client: Any
    arch: str
    cores: int


def open_engine(node: str | None, docker_host: str | None, cores: int | None) -> Engine:
    """Connect to an engine; ``node`` and ``cores`` default to the engine's own name and CPU count."""
    url = engine_url(docker_host)
    client = connect(docker_host)
    try:
        info = client.info()
    except BaseException:
        client.close()
        raise
    return Engine(node or info.get("Name") or url, url, client, normalize_arch(info.get("Architecture", "x86_64")),
                  cores or int(info.get("NCPU") or 1))


class ContainerPool:
    """Long-lived containers of one image on one dataset, each serving shard after shard of any job.

    The pool grows to one container per scheduler thread, at most ``limit`` (a shard then waits
    for a free container), and lives as long as the backend (like the local backend's worker
    processes), so repeated runs pay no start-up and the Python worker keeps its decoded
    molecules. ``one_shot``: one container per shard instead.
    """

    def __init__(self, client: Any, image: str, *, sandbox_root: str, memory: str, python: bool,
                 one_shot: bool = False, limit: int | None = None):
        self.client, self.image, self.python, self.one_shot, self.limit = client, image, python, one_shot, limit
        self.pool_id = uuid.uuid4().hex[:12]
        self.token = f"@workbench-frame-{uuid.uuid4().hex}@"
        self.options = sandbox(sandbox_root, memory, {RUN_LABEL: self.pool_id})
        self.options["environment"] = {
            "WB_FRAME": self.token,
            # the chemistry jobs size their molecule cache from RAM; in a container, from its limit
            "WORKBENCH_CHEM_CACHE_MB": str(parse_bytes(memory) // 3 // 10**6),
        }
        self.command = (["python", "-m", "workbench.worker", "--root", MOUNT, "--frame", self.token]
                        if python else ["sh", "-c", SHELL_LOOP])
        self.startup_s: list[float] = []  # create + attach + start of each container started this run
        self._free: queue.SimpleQueue[WorkerContainer] = queue.SimpleQueue()
        self._all: list[WorkerContainer] = []
        self._count = 0  # containers started or starting, not yet removed
        self._lock = threading.Lock()
        self._closed = False

    def run(self, job: Job, task: ShardTask) -> tuple[ShardOutput, str]:
        """Run ``job`` on one shard in a free container; (output, container name)."""
        request = shard_request(job, task, self.python)
        worker = self._take()
        try:
            status, stdout, error = worker.run(request)
        except BaseException:
            self._drop(worker)
            raise
        if self.one_shot:
            self._drop(worker)
        else:
            self._free.put(worker)
        if status not in OK_STATUS:
            message = error.decode("utf-8", "replace").strip().splitlines()
            raise JobError(f"{self.image} exited {status}: {message[0] if message else '(no message)'}")
        return job.parse_output(stdout), worker.name

    def _take(self) -> WorkerContainer:
        """A free container, else a new one while under ``limit``, else wait for one to be freed."""
        while True:
            try:
                return self._free.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                if self._closed:
                    raise JobError("run cancelled")
                if self.limit is None or self._count < self.limit:
                    self._count += 1
                    break
            try:
                return self._free.get(timeout=0.1)  # wakes up to see a close() or a removed container
            except queue.Empty:
                continue
        start = time.perf_counter()
        try:
            worker = WorkerContainer(self.client, self.image, self.command, self.options, self.token)
        except BaseException:
            with self._lock:
                self._count -= 1
            raise
        self.startup_s.append(time.perf_counter() - start)
        with self._lock:
            self._all.append(worker)
            if self._closed:
                worker.remove()
                raise JobError("run cancelled")
        return worker

    def _drop(self, worker: WorkerContainer) -> None:
        """Remove a container that will serve no more shards (its slot frees up)."""
        with self._lock:
            self._count -= 1
        worker.remove()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.remove()


@dataclass
class InContainers(Job):
    """Adapter: the scheduler runs this job, whose ``run`` sends the shard to a container of its pool."""

    inner: Job
    pools: dict[str, ContainerPool]  # by shard name: the pool of the engine (node) chosen for it
    worker_of: dict[str, str] = field(default_factory=dict)

    name: ClassVar[str] = "in-containers"
    executor: ClassVar[Literal["threads", "processes"]] = "threads"

    def run(self, task: ShardTask) -> ShardOutput:
        output, self.worker_of[task.shard.name] = self.pools[task.shard.name].run(self.inner, task)
        return output


def shard_request(job: Job, task: ShardTask, python: bool) -> str:
    """The stdin line for one shard: the job and shard as JSON (Python worker) or the argv, shell-quoted."""
    if python:
        return json.dumps({"job": job.spec(), "shard": asdict(task.shard)})
    argv = job.command(task)
    assert argv is not None
    if any("\n" in arg for arg in argv):
        raise QueryError("the docker backend cannot pass a newline inside an argument (use one pattern per run)")
    return shlex.join(argv)


def check_readable(root: Path, manifest: "Manifest") -> None:
    """Containers run as nobody: the dataset must be world-readable (checked for local engines)."""
    files = [f for f in (root / s.path for s in manifest.shards) if f.exists()]  # a missing one fails its shard
    dirs_ok = all(os.stat(d).st_mode & 0o005 == 0o005 for d in {root, *(f.parent for f in files)})
    files_ok = all(os.stat(f).st_mode & 0o004 for f in files)
    if not (dirs_ok and files_ok):
        raise BackendError(f"dataset {root} is not readable by the unprivileged container user "
                           f"(uid 65534): run `chmod -R a+rX {root}`")
