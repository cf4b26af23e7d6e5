"""The backend seam: where shard tasks run.

A backend takes a job and a dataset and yields one ``ShardResult`` per shard *as shards finish*
(any order). It must: run one task per shard with dynamic load balance, through one of the two
mechanisms (``threads.stream_threads``, ``dask.stream_futures``), which apply the run's
``RetryPolicy`` (retries, timeout, keep going); raise ``JobError`` naming the shard when one fails
for good (keeping going: yield a ``ShardFailure`` for it); stop outstanding work when the consumer stops iterating
(``GeneratorExit``) or on ``KeyboardInterrupt``, leaving no process or container behind.
Backends are cached per process by ``workbench.backends.get_backend`` so repeated calls
reuse a started cluster; ``close()`` releases it.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from workbench.backends.retry import RetryPolicy, ShardFailure
from workbench.jobs.base import Job, ShardResult, ShardTask
from workbench.storage.manifest import Manifest, ShardInfo


class Backend(ABC):
    name: ClassVar[str]

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()

    @abstractmethod
    def map_shards(self, job: Job, root: Path, manifest: Manifest,
                   policy: RetryPolicy = RetryPolicy()) -> Iterator[ShardResult | ShardFailure]:
        """Run ``job`` on every shard of the dataset at ``root``; yield results as they finish."""

    def prepare(self, job: Job, manifest: Manifest) -> list[str]:
        """Client-side checks before any shard runs (bad pattern, missing tool): the job's own; its notes."""
        return job.prepare(manifest)

    def tasks(self, root: Path, shards: list[ShardInfo]) -> list[ShardTask]:
        """Shard tasks with the dataset root as workers see it (override for remote placement)."""
        return [ShardTask(str(root), s) for s in ordered_for_balance(shards)]

    def describe(self) -> str:
        return f"{self.name}:{self.workers}"

    def dashboard_link(self) -> str | None:
        """The Dask dashboard of the cluster running the tasks, when there is one."""
        return None

    def close(self) -> None:
        """Release what the backend started (clusters, clients, containers)."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def ordered_for_balance(shards: list[ShardInfo]) -> list[ShardInfo]:
    """Largest shards first, so a big last shard does not leave the other cores idle."""
    return sorted(shards, key=lambda s: -s.bytes)
