"""One ``dask spec`` interpreter running a Nanny per worker of the local pool.

``distributed``'s ``SubprocessWorker`` starts an interpreter per worker, each with ``distributed``
imported (~41 MB resident) only to run one Nanny. ``NannyGroup`` runs all of the pool's Nannies in
one: each still forks and watches its own worker process (a killed worker costs that worker a
restart, nothing else), and the pool pays for one such interpreter, not one per core: ~120 MB
less on a four-core board. As a ``SpecCluster`` worker spec it is one entry whose ``group`` lists
the Nannies' name suffixes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from distributed.deploy.subprocess import SubprocessWorker

RESTART_DELAYS = (0.5, 1, 2, 4, 8, 16, 30)  # seconds before each restart in a row (then 30 s)
STEADY_SECONDS = 60.0  # an interpreter that lived this long starts the delays over


class NannyGroup(SubprocessWorker):
    """``len(suffixes)`` Nannies named ``name + suffix`` in one ``python -m dask spec`` process,
    started again whenever it dies until the group is closed."""

    def __init__(self, scheduler: str, name: str, suffixes: list[str], worker_kwargs: dict[str, Any],
                 environ: dict[str, str] | None = None):
        super().__init__(scheduler, worker_class="distributed.Nanny", name=name, worker_kwargs=worker_kwargs)
        self.suffixes = list(suffixes)
        self.environ = dict(environ or {})  # added to this process's environment (where it has none of them)
        self._closing = False
        self._watchdog: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        await self._spawn()
        self._watchdog = asyncio.ensure_future(self._restart_when_dead())

    async def _spawn(self) -> None:
        spec = {f"{self.name}{s}": {"cls": self.worker_class, "opts": {**self.worker_kwargs, "name": f"{self.name}{s}"}}
                for s in self.suffixes}
        self.process = await asyncio.create_subprocess_exec(sys.executable, "-m", "dask", "spec", self.scheduler,
                                                            "--spec", json.dumps(spec), env={**self.environ, **os.environ})

    async def _restart_when_dead(self) -> None:
        in_a_row = 0
        loop = asyncio.get_running_loop()
        while not self._closing and self.process is not None:
            started = loop.time()
            await self.process.wait()
            if self._closing:
                return
            in_a_row = 0 if loop.time() - started >= STEADY_SECONDS else in_a_row + 1
            await asyncio.sleep(RESTART_DELAYS[min(in_a_row, len(RESTART_DELAYS)) - 1] if in_a_row else 0)
            if self._closing:
                return
            await self._spawn()

    async def close(self) -> None:
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        await super().close()


def group_spec(workers: int, worker_kwargs: dict[str, Any], environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``SpecCluster(workers=...)`` for one group of ``workers`` Nannies, their interpreter's
    environment gaining ``environ``."""
    suffixes = [f"-{i}" for i in range(workers)]
    return {"workbench": {"cls": NannyGroup, "options": {"suffixes": suffixes, "worker_kwargs": worker_kwargs,
                                                         "environ": environ}, "group": suffixes}}
