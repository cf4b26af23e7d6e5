"""Worker-container pools on Docker engines: one engine's facts, a bounded pool of long-lived
sandboxed containers serving shard after shard, and the request line each shard is sent as."""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docker.utils import parse_bytes  # Docker's own reading of memory limits ("2g" = 2 GiB)

from workbench.containers.engine import connect, engine_url
from workbench.containers.imagemap import normalize_arch
from workbench.containers.workers import (
    CACHE_MOUNT,
    CACHE_VOLUME,
    MOUNT,
    OUT_MOUNT,
    RUN_LABEL,
    SHELL_LOOP,
    WorkerContainer,
    remove_orphans,
    sandbox,
)
from workbench.errors import BackendError, JobError, QueryError, TransientError
from workbench.jobs.base import Job, ShardOutput, ShardTask
from workbench.util.scope import on_kill

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest

OK_STATUS = (0, 1)  # grep: 0 matches, 1 none; 2 and up is an error
TEMPFAIL = 75  # the Python worker's status for an error that may not repeat (EX_TEMPFAIL)


@dataclass(frozen=True, eq=False)
class Engine:
    """One Docker engine: the node whose name results carry, its URL and client, arch and containers at most."""

    node: str
    url: str
    client: Any
    arch: str
    cores: int


def open_engine(node: str | None, docker_host: str | None, cores: int | None, insecure: bool = False) -> Engine:
    """Connect to an engine; ``node`` and ``cores`` default to the engine's own name and CPU count."""
    url = engine_url(docker_host)
    client = connect(docker_host, insecure=insecure)
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

    ``local_outputs`` (an engine on this host): each container writes a shard's output to its own
    file in a directory of this host mounted at ``/out`` (the only place it may write), read here
    once the shard's frame arrives; the attach stream then carries frames only. Output through the
    stream goes grep -> shim -> engine -> client, each hop a copy and a wait on a busy machine.
    """

    def __init__(self, client: Any, image: str, *, sandbox_root: str, memory: str, python: bool,
                 one_shot: bool = False, limit: int | None = None, local_outputs: bool = False):
        self.client, self.image, self.python, self.one_shot, self.limit = client, image, python, one_shot, limit
        self.pool_id = uuid.uuid4().hex[:12]
        self.token = f"@workbench-frame-{uuid.uuid4().hex}@"
        self.options = sandbox(sandbox_root, memory, {RUN_LABEL: self.pool_id})
        self.options["environment"] = {
            "WB_FRAME": self.token,
            # the chemistry jobs size their molecule cache from RAM; in a container, from its limit
            "WORKBENCH_CHEM_CACHE_MB": str(parse_bytes(memory) // 3 // 10**6),
        }
        if python:  # index files hashed once per engine, not once per container (see CACHE_VOLUME)
            self.options["volumes"][CACHE_VOLUME] = {"bind": CACHE_MOUNT, "mode": "rw"}
            self.options["environment"]["WORKBENCH_CACHE"] = CACHE_MOUNT
        self.out_dir = _output_dir() if local_outputs else None
        if self.out_dir:
            self.options["volumes"][self.out_dir] = {"bind": OUT_MOUNT, "mode": "rw"}
        self.command = (["python", "-m", "workbench.containers.worker", "--root", MOUNT, "--frame", self.token]
                        if python else ["sh", "-c", SHELL_LOOP])
        self.startup_s: list[float] = []  # create + attach + start of each container started this run
        self._free: queue.SimpleQueue[WorkerContainer] = queue.SimpleQueue()
        self._all: list[WorkerContainer] = []
        self._count = 0  # containers started or starting, not yet removed
        self._lock = threading.Lock()
        self._closed = False
        # what killed clients left (containers never started, output directories); off the critical path
        threading.Thread(target=_remove_leftovers, args=(client, local_outputs), daemon=True).start()

    def run(self, job: Job, task: ShardTask, worker: WorkerContainer | None = None) -> tuple[ShardOutput, str, float]:
        """Run ``job`` on one shard in ``worker`` (taken with ``acquire``) or a free container;
        (output, container name, seconds). A container that dies or is killed fails the shard with
        ``TransientError``, as does a tool killed by a signal inside it."""
        request = shard_request(job, task, self.python)
        worker = worker or self.acquire()
        assert worker is not None
        start = time.perf_counter()
        forget = on_kill(worker.remove)  # a shard timeout removes the container serving it
        try:
            status, stdout, error = worker.run(request)
            if self.out_dir and status in OK_STATUS:
                stdout = Path(self.out_dir, worker.name).read_bytes()
        except BaseException:
            self._drop(worker)
            raise
        finally:
            forget()
        if self.one_shot:
            self._drop(worker)
        else:
            self._free.put(worker)
        if status not in OK_STATUS:
            message = error.decode("utf-8", "replace").strip().splitlines()
            text = f"{self.image} exited {status}: {message[0] if message else '(no message)'}"
            raise (TransientError if status == TEMPFAIL or status >= 128 else JobError)(text)
        output = job.parse_output(stdout)
        if self.python:  # the Python worker frames the shard's notes where errors go
            output.notes = error.decode("utf-8", "replace").splitlines()
        return output, worker.name, time.perf_counter() - start

    def busy(self) -> float:
        """The share of this pool's slots serving shards (or starting) now."""
        with self._lock:
            return (self._count - self._free.qsize()) / (self.limit or max(self._count, 1))

    def acquire(self, block: bool = True) -> WorkerContainer | None:
        """A free container, else a new one while under ``limit``; else wait for one to be freed
        (``block=False``: return None)."""
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
            if not block:
                return None
            try:
                return self._free.get(timeout=0.1)  # wakes up to see a close() or a removed container
            except queue.Empty:
                continue
        start = time.perf_counter()
        name = f"workbench-{self.pool_id}-{uuid.uuid4().hex[:8]}"
        options = {**self.options, "name": name}
        if self.out_dir:
            options["environment"] = {**self.options["environment"], "WB_OUT": f"{OUT_MOUNT}/{name}"}
        try:
            worker = WorkerContainer(self.client, self.image, self.command, options, self.token)
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

    def close(self, wait: bool = True) -> None:
        """Remove every container (``wait=False``: kill them and let the engine delete them)."""
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.remove() if wait else worker.stop()
        if self.out_dir:
            shutil.rmtree(self.out_dir, ignore_errors=True)  # a killed container's file may stay open: fine


OUT_PREFIX = "workbench-out-"


def _remove_leftovers(client: Any, local_outputs: bool) -> None:
    """What killed clients left: containers never started, and (an engine on this host) the output
    directories of clients no longer alive. Runs on a thread of its own, so it never raises."""
    remove_orphans(client)
    if local_outputs:
        try:
            remove_dead_output_dirs()
        except OSError:  # an unreadable temporary directory: nothing of ours to find there
            pass


def _output_dir() -> str:
    """A fresh directory on this host that the containers' user (nobody) may write, named after this
    process (``workbench-out-PID-…``, so that ``remove_dead_output_dirs`` can tell when it is left over)."""
    path = tempfile.mkdtemp(prefix=f"{OUT_PREFIX}{os.getpid()}-")
    try:
        os.chown(path, 65534, 65534)
    except PermissionError:  # not root: let nobody write (the directory's name is unguessable)
        os.chmod(path, 0o733)
    return path


def remove_dead_output_dirs(parent: str | None = None) -> list[str]:
    """Delete the output directories under ``parent`` (the temporary directory) of pools whose
    process is gone: a killed client leaves its last shards' output there; their names."""
    import psutil

    removed = []
    for entry in os.scandir(parent or tempfile.gettempdir()):
        pid = entry.name[len(OUT_PREFIX):].split("-", 1)[0]
        if not (entry.name.startswith(OUT_PREFIX) and pid.isdigit()) or psutil.pid_exists(int(pid)):
            continue
        try:
            ours = entry.is_dir(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid in (os.getuid(), 65534)
        except OSError:  # another client's sweep removed it first
            continue
        if ours:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.name)
    return removed


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
