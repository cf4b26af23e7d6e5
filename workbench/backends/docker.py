"""Shard tasks in sandboxed containers on a local or remote Docker Engine, one container per core.

Each of ``workers`` long-lived containers pulls shard paths from the queue over its attached
stdin and frames each shard's output on stdout (``workbench.containers.workers``); Dask's
threaded scheduler (through the local backend) hands shards out largest first. Measured
against one container per shard (``mode="per-shard"``) in ``benchmarks/docker``.
Grep jobs run their real command in the image the image map gives their engine; Python jobs
run ``python -m workbench.worker`` in the rdkit image.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from workbench.backends.base import Backend
from workbench.containers.engine import connect, engine_arch, engine_url
from workbench.containers.imagemap import load_image_map
from workbench.containers.workers import MOUNT, RUN_LABEL, SHARD, WorkerContainer, loop_command, sandbox, wait_gone
from workbench.dataset.manifest import ShardInfo
from workbench.errors import BackendError, JobError
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

    def describe(self) -> str:
        return f"docker:{self.workers}@{self.url}"

    def resolve_image(self, job: Job) -> tuple[str, str]:
        """(tag, memory limit) of the image that runs ``job`` on this engine; missing -> BackendError."""
        import docker

        name = self.image or self.images.for_job(job).name
        spec = self.images.images.get(name)
        tag = spec.tag_for(self.arch) if spec else name  # --image may also be a plain tag
        try:
            self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            only = f" --only {spec.name}" if spec else ""
            raise BackendError(f"image {tag} is not on the Docker engine at {self.url}: "
                               f"run `workbench images build{only}`") from None
        return tag, self.memory or (spec.memory if spec else "1g")

    def map_shards(self, job: Job, root: Path, manifest: "Manifest") -> Iterator[ShardResult]:
        if self.url.startswith("unix://"):
            check_readable(Path(root), manifest)
        tag, memory = self.resolve_image(job)
        pool = ContainerPool(self.client, job, tag, sandbox_root=str(root), memory=memory, one_shot=self.mode == "per-shard")
        inner = self._scheduler.map_shards(InContainers(job, pool), Path(MOUNT), manifest)
        try:
            for result in inner:
                result.worker, result.node = pool.worker_of.get(result.shard, result.worker), self.node
                yield result
        finally:
            pool.close()  # in-flight shards fail fast once their container is gone
            inner.close()
            wait_gone(self.client, pool.run_id)

    def close(self) -> None:
        self._scheduler.close()
        self.client.close()


class ContainerPool:
    """Up to one container per scheduler thread, each serving shard after shard (or one, if ``one_shot``)."""

    def __init__(self, client: Any, job: Job, image: str, *, sandbox_root: str, memory: str, one_shot: bool = False):
        self.client, self.job, self.image, self.one_shot = client, job, image, one_shot
        self.run_id = uuid.uuid4().hex[:12]
        self.token = f"--workbench-frame-{uuid.uuid4().hex}--"
        labels = {RUN_LABEL: self.run_id, "workbench.job": job.name}
        self.options = sandbox(sandbox_root, memory, labels)
        self.command = worker_command(job, self.token)
        self.options["environment"] = {"WB_FRAME": self.token, "WB_SHARD": placeholder_path()}
        self.worker_of: dict[str, str] = {}
        self._free: queue.SimpleQueue[WorkerContainer] = queue.SimpleQueue()
        self._all: list[WorkerContainer] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, task: ShardTask) -> ShardOutput:
        worker = self._take()
        try:
            status, stdout, error = worker.run(task.path)
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
        self.worker_of[task.shard.name] = worker.name
        return self.job.parse_output(stdout)

    def _take(self) -> WorkerContainer:
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise JobError("run cancelled")
        worker = WorkerContainer(self.client, self.image, self.command, self.options, self.token)
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

    name: ClassVar[str] = "in-containers"
    executor: ClassVar[Literal["threads", "processes"]] = "threads"

    def run(self, task: ShardTask) -> ShardOutput:
        return self.pool.run(task)


def placeholder_path() -> str:
    return os.path.join(MOUNT, SHARD)


def worker_command(job: Job, token: str) -> list[str]:
    """The long-lived worker's argv: the shell loop over ``job.command`` or the Python worker."""
    template = job.command(ShardTask(MOUNT, ShardInfo("shard", SHARD, 0, 0, "")))
    if template is None:
        return ["python", "-m", "workbench.worker", "--root", MOUNT, "--frame", token, json.dumps(job.spec())]
    if placeholder_path() not in template:
        raise BackendError(f"job {job.name!r}: its command does not take the shard path as one argument")
    return loop_command(template)


def check_readable(root: Path, manifest: "Manifest") -> None:
    """Containers run as nobody: the dataset must be world-readable (checked for local engines)."""
    paths = [root, *{(root / s.path).parent for s in manifest.shards}]
    dirs_ok = all(os.stat(p).st_mode & 0o005 == 0o005 for p in paths)
    files_ok = all(os.stat(root / s.path).st_mode & 0o004 for s in manifest.shards)
    if not (dirs_ok and files_ok):
        raise BackendError(f"dataset {root} is not readable by the unprivileged container user "
                           f"(uid 65534): run `chmod -R a+rX {root}`")
