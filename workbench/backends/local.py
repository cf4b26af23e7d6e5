"""This machine, one shard task per core, nothing to set up.

Jobs whose work runs in a subprocess or releases the GIL (grep) run on a thread pool
(``workbench.backends.threads``): no Dask import, and threads driving grep subprocesses need no
more. Jobs that hold the GIL (RDKit loops) run on a distributed ``LocalCluster`` of
single-threaded worker processes, started on first use and kept for the rest of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends.base import Backend
from workbench.backends.retry import RetryPolicy, ShardFailure
from workbench.backends.threads import stream_threads
from workbench.jobs.base import Job, ShardResult, ShardTask, run_shard
from workbench.jobs.proc import kill_running
from workbench.util.notebook import in_notebook

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest


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

    # -- processes: a cached distributed LocalCluster --------------------------------------
    def _processes(self, job: Job, tasks: list[ShardTask], policy: RetryPolicy) -> Iterator[ShardResult | ShardFailure]:
        from workbench.backends.dask import stream_futures

        return stream_futures(self.client(), job, [(t, None) for t in tasks], policy)

    def client(self) -> Any:
        """The process cluster's client, started on first use."""
        if self._client is None:
            import logging

            from distributed import Client, LocalCluster

            logging.getLogger("distributed").setLevel(logging.ERROR)  # no INFO chatter on our stderr
            # a task whose worker died is the run's to retry (or report), not the scheduler's to log
            logging.getLogger("distributed.scheduler").addFilter(
                lambda record: "workers died while trying to run it" not in record.getMessage())
            # the scheduler's HTTP endpoint on an ephemeral port: no clash with another cluster's 8787;
            # the dashboard (bokeh, +0.7 s start-up) only in a notebook, where its link is one click away.
            # allowed_failures=0: a task whose worker dies comes back as KilledWorker at once, so
            # the run's own retry policy (not the scheduler's) decides whether to run it again
            self._dashboard = in_notebook() and dashboard_available()
            where = {"dashboard_address": ":0"} if self._dashboard else {"dashboard_address": None}
            self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                         scheduler_kwargs={"dashboard_address": ":0", "allowed_failures": 0},
                                         silence_logs=logging.ERROR, **where)
            self._client = Client(self._cluster, set_as_default=False)
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

