"""The one way shard tasks run on threads: a ``ThreadPoolExecutor``, results as they finish.

For work that runs in a subprocess or a container (grep, the docker backend): threads only wait.
Tasks are submitted largest shard first; a free thread takes the next one (dynamic balance).
Each attempt runs under the run's ``RetryPolicy`` (``workbench.backends.retry``): its timeout,
and a failed attempt submitted again (the call gets the shard's ``Tries`` to choose where). A final
failure is raised as ``JobError`` naming the shard (keeping going: yielded as a ``ShardFailure``);
outstanding tasks are then cancelled and ``on_stop`` is called (to kill subprocesses or remove
containers), as when the consumer stops early or on ``KeyboardInterrupt``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from workbench.backends.retry import Attempts, Failed, RetryPolicy, ShardFailure, Tries
from workbench.jobs.base import ShardResult, ShardTask
from workbench.util.scope import run_scoped


def stream_threads(pool: ThreadPoolExecutor, call: Callable[[ShardTask, Tries], ShardResult],
                   tasks: Sequence[ShardTask], on_stop: Callable[[], None] | None = None,
                   policy: RetryPolicy = RetryPolicy()) -> Iterator[ShardResult | ShardFailure]:
    """Run ``call(task, tries)`` for every task on ``pool``; yield results in completion order."""
    cancel = threading.Event()
    attempts = Attempts(policy, tasks)

    def one(tries: Tries) -> ShardResult | Failed | None:
        if cancel.is_set():
            return None
        try:
            return run_scoped(lambda task: call(task, tries), tries.task, policy.shard_timeout)
        except Exception as exc:
            return Failed(exc)

    futures: dict[Future[ShardResult | Failed | None], Tries] = {}

    def submit(task: ShardTask) -> None:
        tries = attempts.start(task)
        futures[pool.submit(one, tries)] = tries

    for task in tasks:
        submit(task)
    finished = False
    try:
        while futures:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                tries = futures.pop(future)
                outcome = future.result()
                assert outcome is not None  # only cancelled runs skip their tasks
                settled = attempts.settle(tries, outcome)
                if settled is None:
                    submit(tries.task)
                else:
                    yield settled
        finished = True
    finally:
        if not finished:
            cancel.set()
            for future in futures:
                future.cancel()
            if on_stop is not None:
                on_stop()
            wait(futures)
