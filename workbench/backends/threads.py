"""The one way shard tasks run on threads: a ``ThreadPoolExecutor``, results as they finish.

For work that runs in a subprocess or a container (grep, the docker backend): threads only wait.
Tasks are submitted largest shard first; a free thread takes the next one (dynamic balance).
The first failure is raised as ``JobError`` naming the shard; outstanding tasks are cancelled
and ``on_stop`` is called (to kill subprocesses or remove containers) when the consumer stops
early, on an error or on ``KeyboardInterrupt``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from typing import TypeVar

from workbench.errors import JobError, WorkbenchError
from workbench.jobs.base import ShardTask

T = TypeVar("T")


def stream_threads(pool: ThreadPoolExecutor, call: Callable[[ShardTask], T], tasks: Sequence[ShardTask],
                   on_stop: Callable[[], None] | None = None) -> Iterator[T]:
    """Run ``call(task)`` for every task on ``pool``; yield results in completion order."""
    cancel = threading.Event()

    def one(task: ShardTask) -> T | None:
        return None if cancel.is_set() else call(task)

    futures: dict[Future[T | None], ShardTask] = {pool.submit(one, task): task for task in tasks}
    finished = False
    try:
        for future in as_completed(futures):
            exc = future.exception()
            if exc is not None:
                raise shard_error(futures[future].shard.name, exc)
            yield future.result()  # type: ignore[misc]
        finished = True
    finally:
        if not finished:
            cancel.set()
            for future in futures:
                future.cancel()
            if on_stop is not None:
                on_stop()
            wait(futures)


def shard_error(shard: str, exc: BaseException) -> JobError:
    """The error a backend raises for a failed shard: its name and the cause in one line."""
    message = str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"
    return JobError(f"shard {shard} failed: {message}")
