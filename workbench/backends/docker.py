"""Shard tasks in sandboxed containers on a local or remote Docker Engine, one container per core.

Each of ``workers`` long-lived containers pulls shards from the queue over its attached stdin
and frames each shard's output on stdout (``workbench.containers.workers``); Dask's threaded
scheduler (through the local backend) hands shards out largest first. Containers serve any
job on their image and dataset and live as long as the backend (removed by ``close()``, at
exit, on any error or interrupt, and by the engine when the client dies). Measured against
one container per shard (``mode="per-shard"``) in ``benchmarks/docker``.
Grep jobs run their real command in the image the image map gives their engine; Python jobs
run ``python -m workbench.worker`` in the rdkit image.
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
from workbench.containers.engine import connect, engine_arch, engine_url
from workbench.containers.imagemap import load_image_map
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
        if cluster:
            raise BackendError("--backend docker with --cluster is not supported yet: "
                               "run one engine at a time with --docker-host")
        if mode not in MODES:
            raise BackendError(f"unknown docker mode {mode!r} (choose from {', '.join(MODES)})")
        self.url, self.image, self.mode, self.memory = engine_url(docker_host), image, mode, memory
        self.client = connect(docker_host)
        self.arch = engine_arch(self.client)
        self.node = self.client.info().get("Name") or self.url
        self.images = load_image_map()
        from workbench.backends.local import LocalBackend

        self._scheduler = LocalBackend(self.workers)
        self._pools: dict[tuple[str, str, str, bool], ContainerPool] = {}  # (image, dataset, memory, python)
        #: Seconds the last run spent starting its slowest container (its fixed cost).
        self.last_startup_s = 0.0

    def describe(self) -> str:
        return f"docker:{self.workers}@{self.url}"

    def prepare(self, job: Job, manifest: "Manifest") -> None:
        """The job's checks, except that its tool need not be on this host: the image brings it."""
        try:
            job.prepare(manifest)
        except EngineNotFound:
            pass

    def resolve_image(self, job: Job) -> tuple[str, str]:
        """(tag, memory limit) of the image that runs ``job`` on this engine; missing -> BackendError."""
        import docker

        name = self.image or self.images.for_job(job).name
        spec = self.images.images.get(name)
        tag = spec.tag_for(self.arch) if spec else name  # --image may also be a plain tag
        only = f" --only {spec.name}" if spec else ""
        try:
            image = self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            raise BackendError(f"image {tag} is not on the Docker engine at {self.url}: "
                               f"run `workbench images build{only}`") from None
        if spec and spec.wheelhouse and (image.labels or {}).get(SOURCE_LABEL) != source_digest():
            raise BackendError(f"image {tag} carries another version of the workbench jobs than this one: "
                               f"run `workbench images build{only}`")
        return tag, self.memory or (spec.memory if spec else "1g")

    def map_shards(self, job: Job, root: Path, manifest: "Manifest") -> Iterator[ShardResult]:
        if self.url.startswith("unix://"):
            check_readable(Path(root), manifest)
        tag, memory = self.resolve_image(job)
        python = job.command(ShardTask(MOUNT, manifest.shards[0])) is None if manifest.shards else False
        key = (tag, str(root), memory, python)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = ContainerPool(self.client, tag, sandbox_root=str(root), memory=memory,
                                                    python=python, one_shot=self.mode == "per-shard")
        adapter = InContainers(job, pool)
        inner = self._scheduler.map_shards(adapter, Path(MOUNT), manifest)
        pool.startup_s.clear()
        finished = False
        try:
            for result in inner:
                result.worker, result.node = adapter.worker_of.get(result.shard, result.worker), self.node
                yield result
            finished = True
        finally:
            if not finished:  # error, Ctrl-C or the consumer stopped: workers may be mid-shard
                self._pools.pop(key, None)
                pool.close()  # in-flight shards fail fast once their container is gone
            inner.close()
            if not finished:
                wait_gone(self.client, pool.pool_id)
            self.last_startup_s = max(pool.startup_s, default=0.0)

    def close(self) -> None:
        """Remove every worker container, stop the scheduler, close the client."""
        while self._pools:
            _, pool = self._pools.popitem()
            pool.close()
            wait_gone(self.client, pool.pool_id)
        self._scheduler.close()
        self.client.close()


class ContainerPool:
    """Long-lived containers of one image on one dataset, each serving shard after shard of any job.

    The pool grows to one container per scheduler thread and lives as long as the backend (like
    the local backend's worker processes), so repeated runs pay no start-up and the Python
    worker keeps its decoded molecules. ``one_shot``: one container per shard instead.
    """

    def __init__(self, client: Any, image: str, *, sandbox_root: str, memory: str, python: bool,
                 one_shot: bool = False):
        self.client, self.image, self.python, self.one_shot = client, image, python, one_shot
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
        self._lock = threading.Lock()
        self._closed = False

    def run(self, job: Job, task: ShardTask) -> tuple[ShardOutput, str]:
        """Run ``job`` on one shard in a free container; (output, container name)."""
        request = shard_request(job, task, self.python)
        worker = self._take()
        try:
            status, stdout, error = worker.run(request)
        except BaseException:
            worker.remove()
            raise
        if self.one_shot:
            worker.remove()
        else:
            self._free.put(worker)
        if status not in OK_STATUS:
            message = error.decode("utf-8", "replace").strip().splitlines()
            raise JobError(f"{self.image} exited {status}: {message[0] if message else '(no message)'}")
        return job.parse_output(stdout), worker.name

    def _take(self) -> WorkerContainer:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise JobError("run cancelled")
        start = time.perf_counter()
        worker = WorkerContainer(self.client, self.image, self.command, self.options, self.token)
        self.startup_s.append(time.perf_counter() - start)
        with self._lock:
            self._all.append(worker)
            if self._closed:
                worker.remove()
                raise JobError("run cancelled")
        return worker

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.remove()


@dataclass
class InContainers(Job):
    """Adapter: the scheduler runs this job, whose ``run`` sends the shard to a pooled container."""

    inner: Job
    pool: ContainerPool
    worker_of: dict[str, str] = field(default_factory=dict)

    name: ClassVar[str] = "in-containers"
    executor: ClassVar[Literal["threads", "processes"]] = "threads"

    def run(self, task: ShardTask) -> ShardOutput:
        output, self.worker_of[task.shard.name] = self.pool.run(self.inner, task)
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
