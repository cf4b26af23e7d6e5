"""This machine, one shard task per core, nothing to set up.

Jobs whose work runs in a subprocess or releases the GIL (grep) run on a thread pool
(``workbench.backends.threads``): no Dask import, and threads driving grep subprocesses need no
more. Jobs that hold the GIL (RDKit loops) run on single-threaded Dask worker processes, started
on first use and kept for the rest of the session. One interpreter started with ``python -m dask
spec`` (``backends.nanny_group``) runs a Nanny per worker, attached to a scheduler in this
process: unlike ``LocalCluster``'s workers, spawned from this process, the workers never re-import
the caller's ``__main__``, so a plain script calling ``ds.substructure(...)`` at top level works
as written; each Nanny forks its worker process (``FORK_WORKERS``). A killed worker process is
restarted by its Nanny; a pool that lost a whole worker is replaced before the next run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends.base import Backend
from workbench.backends.retry import RetryPolicy, ShardFailure
from workbench.backends.threads import stream_threads
from workbench.errors import BackendError
from workbench.jobs.base import Job, ShardResult, ShardTask, run_shard
from workbench.jobs.proc import kill_running
from workbench.util.notebook import in_notebook

if TYPE_CHECKING:
    import logging

    from workbench.storage.manifest import Manifest

#: Each Nanny forks its worker process rather than spawning a fresh interpreter that imports
#: ``distributed`` again: 0.3 s off every CLI command's cold start (the Nanny is a `dask spec`
#: process with nothing of the caller's in it, so the fork copies nothing of theirs).
FORK_WORKERS = {"DASK_DISTRIBUTED__WORKER__MULTIPROCESSING_METHOD": "fork"}
#: Arrow allocates from glibc's heap, which ``util.memory.release_freed_memory`` trims after each
#: shard; its default mimalloc pool kept tens of MB per worker resident after many-hit queries.
ARROW_SYSTEM_POOL = {"ARROW_DEFAULT_MEMORY_POOL": "system"}
#: Scheduler log lines about failures the run itself retries or reports.
_REPORTED_BY_THE_RUN = ("workers died while trying to run it", "timed out waiting without any running workers")
START_TIMEOUT = 120.0  # seconds the pool's worker processes have to start (``WORKBENCH_POOL_START_TIMEOUT``)


def _not_reported_by_the_run(record: "logging.LogRecord") -> bool:
    return not any(message in record.getMessage() for message in _REPORTED_BY_THE_RUN)


def start_timeout() -> float:
    """Seconds the pool's worker processes have to start and connect, and that a shard task waits
    while none runs (they died and none came back): ``WORKBENCH_POOL_START_TIMEOUT`` (a loaded
    board may need longer), else ``START_TIMEOUT``."""
    import os

    return float(os.environ.get("WORKBENCH_POOL_START_TIMEOUT", START_TIMEOUT))


def worker_environ() -> dict[str, str]:
    """What the Nannies' `dask spec` interpreter's environment gains: the fork start, Arrow's system memory
    pool, and Dask's ``distributed.nanny.pre-spawn-environ`` (``MALLOC_TRIM_THRESHOLD_``, one BLAS
    thread). glibc, Arrow and BLAS read those when a process starts, so a forked worker has them
    only if its Nanny started with them."""
    import dask

    pre_spawn = dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}
    return {**{key: str(value) for key, value in pre_spawn.items()}, **ARROW_SYSTEM_POOL, **FORK_WORKERS}


def dashboard_available() -> bool:
    """Whether Dask can serve its dashboard here (it needs bokeh)."""
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


class LocalBackend(Backend):
    name = "local"

    def __init__(self, workers: int | None = None):
        super().__init__(workers)
        self._pool: ThreadPoolExecutor | None = None
        self._client: Any = None
        self._cluster: Any = None
        self._dashboard = self._on_processes = False

    def map_shards(self, job: Job, root: Path, manifest: "Manifest",
                   policy: RetryPolicy = RetryPolicy()) -> Iterator[ShardResult | ShardFailure]:
        tasks = self.tasks(root, manifest.shards)
        self._on_processes = job.executor != "threads"
        if job.executor == "threads":
            return self._threaded(job, tasks, policy)
        return self._processes(job, tasks, policy)

    # -- threads: a thread pool driving subprocesses -----------------------------------------
    def _threaded(self, job: Job, tasks: list[ShardTask], policy: RetryPolicy) -> Iterator[ShardResult | ShardFailure]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="workbench")
        return stream_threads(self._pool, lambda task, _: run_shard(job, task), tasks, on_stop=kill_running,
                              policy=policy)

    # -- processes: a cached pool of worker subprocesses -------------------------------------
    def _processes(self, job: Job, tasks: list[ShardTask], policy: RetryPolicy) -> Iterator[ShardResult | ShardFailure]:
        from workbench.backends.dask import stream_futures

        return stream_futures(self.client(), job, [(t, None) for t in tasks], policy)

    def client(self) -> Any:
        """The process pool's client, started on first use (and again if a worker died)."""
        if self._client is not None and len(self._client.scheduler_info(n_workers=-1)["workers"]) < self.workers:
            try:  # a worker process died: its nanny starts another within seconds
                self._client.wait_for_workers(self.workers, timeout=15)
            except TimeoutError:  # the nanny itself is gone: a fresh pool rather than a smaller one
                self.close()
        if self._client is None:
            import logging

            import dask
            from distributed import Client, Scheduler, SpecCluster
            from distributed.worker_memory import parse_memory_limit

            from workbench.backends.nanny_group import group_spec

            logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO chatter on our stderr
            # a task whose worker died, or that found none, is the run's to retry or report, not the scheduler's to log
            logging.getLogger("distributed.scheduler").addFilter(_not_reported_by_the_run)  # (added once)
            # one `dask spec` interpreter running a Nanny per worker (each restarts its worker process if
            # it dies), never an import of the caller's __main__; loopback only
            options = {"host": "127.0.0.1", "nthreads": 1, "silence_logs": logging.ERROR,
                       "memory_limit": parse_memory_limit("auto", 1, self.workers, logger=logging.getLogger(__name__))}
            # the scheduler's HTTP endpoint on an ephemeral port (no clash with another cluster's 8787);
            # the dashboard (bokeh, +0.7 s start-up) only in a notebook, where its link is one click away.
            # allowed_failures=0: a task whose worker dies comes back as KilledWorker at once, so
            # the run's own retry policy (not the scheduler's) decides whether to run it again
            self._dashboard = in_notebook() and dashboard_available()
            scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0",
                                                       "dashboard": self._dashboard, "allowed_failures": 0}}
            timeout = start_timeout()
            # tasks that find no worker process for as long fail (NoWorkerError) rather than wait
            # for ever: the pool's interpreter died and cannot start again
            with dask.config.set({"distributed.scheduler.no-workers-timeout": f"{timeout}s"}):
                self._cluster = SpecCluster(scheduler=scheduler, silence_logs=logging.ERROR, name="workbench-local",
                                            workers=group_spec(self.workers, options, worker_environ()))
            self._client = Client(self._cluster, set_as_default=False)
            try:
                self._client.wait_for_workers(self.workers, timeout=timeout)
            except TimeoutError:
                self.close()
                raise BackendError(f"the local pool's {self.workers} worker processes did not start within "
                                   f"{timeout:g} s (their errors are above; `{sys.executable} -m dask spec` "
                                   "runs them)") from None
        return self._client

    def dashboard_link(self) -> str | None:
        """The process cluster's dashboard (started in notebooks, with bokeh installed), for jobs that run on it."""
        if self._cluster is None or not self._dashboard or not self._on_processes:
            return None
        return self._cluster.dashboard_link

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._cluster.close()
            self._client = self._cluster = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

