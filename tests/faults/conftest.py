"""The fault-injection suite: real kills at seeded random moments, results compared with a fault-free run.

``WORKBENCH_FAULT_TRIALS`` (default 20) sets the trials per backend, ``WORKBENCH_FAULT_SEED`` the seed;
a failing trial names its seed so it can be repeated.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.docker.conftest import SLOW_PATTERN

TRIALS = int(os.environ.get("WORKBENCH_FAULT_TRIALS", "20"))
SEED = int(os.environ.get("WORKBENCH_FAULT_SEED", "9"))

__all__ = ["SLOW_PATTERN", "TRIALS", "Killer", "anywhere", "check_once", "descendants", "named", "own_containers",
           "sorted_lines", "trial_rngs", "wait_until"]


@pytest.fixture(scope="session")
def faults_dataset(tmp_path_factory: pytest.TempPathFactory, nci_smi: Path):
    """The NCI set three times over (about 600 kB) in 24 kB shards: SLOW_PATTERN takes a second or two on it."""
    import workbench as wb

    smiles = [line.split()[0] for line in nci_smi.read_text().splitlines() if line.strip()]
    tmp = tmp_path_factory.mktemp("faults")
    src = tmp / "faults.tsv"
    src.write_text("".join(f"{i}\t{s}\n" for i, s in enumerate(smiles * 3, 1)))
    return wb.ingest([src], tmp / "ds", shard_size="24kB", format="cid-smiles")


def trial_rngs(name: str, trials: int = TRIALS) -> list[tuple[int, random.Random]]:
    """One seeded generator per trial (the seed names the backend and the trial)."""
    return [(t, random.Random(f"{SEED}-{name}-{t}")) for t in range(trials)]


def descendants(match: Callable[[psutil.Process], bool], root: psutil.Process | None = None,
                recursive: bool = True) -> list[psutil.Process]:
    """Live processes below ``root`` (this test process; only its children unless ``recursive``) that ``match``."""
    found = []
    for proc in (root or psutil.Process()).children(recursive=recursive):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and match(proc):
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def anywhere(*needles: str) -> list[psutil.Process]:
    """Live processes anywhere on this machine whose command line holds every needle (orphans included)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and all(n in " ".join(proc.info["cmdline"] or []) for n in needles):
            found.append(proc)
    return found


def is_dask_worker(proc: psutil.Process) -> bool:
    """A Nanny's worker process: spawned (``spawn_main``), or forked (the Nanny's own command line)."""
    command = " ".join(proc.cmdline())
    if "spawn_main" in command:
        return True
    parent = proc.parent()
    return parent is not None and "dask" in command and command == " ".join(parent.cmdline())


def own_containers(client) -> list:
    """Worker containers of the docker backends of this process (never another run's on the same engine)."""
    from workbench.backends import _started
    from workbench.backends.docker import DockerBackend
    from workbench.containers.workers import RUN_LABEL

    pools = {pool.pool_id for b in list(_started.values()) if isinstance(b, DockerBackend)
             for pool in list(b._pools.values())}
    return [c for pool_id in pools for c in client.containers.list(sparse=True, filters={"label": f"{RUN_LABEL}={pool_id}"})]


def named(name: str) -> Callable[[psutil.Process], bool]:
    return lambda proc: proc.name() == name


class Killer:
    """At a random moment (``window`` seconds after entering), kill ``kills`` of the victims ``find``
    returns, as soon as there are any; ``killed`` lists what was killed."""

    def __init__(self, rng: random.Random, find: Callable[[], list], kill: Callable[[Any], None],
                 window: tuple[float, float] = (0.1, 1.0), kills: int = 1):
        self.rng, self.find, self.kill, self.window, self.kills = rng, find, kill, window, kills
        self.killed: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self._stop.wait(self.rng.uniform(*self.window))
        while len(self.killed) < self.kills and not self._stop.is_set():
            try:
                victims = self.find()
            except Exception:  # what it looks at changed under it: look again
                victims = []
            if victims:
                victim = self.rng.choice(victims)
                try:
                    self.kill(victim)
                    self.killed.append(victim)
                except Exception:  # it finished just now: pick another
                    pass
            self._stop.wait(0.01)

    def __enter__(self) -> "Killer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def sorted_lines(results) -> list[bytes]:
    return sorted(line for r in results for line in r.payload.splitlines())


def check_once(results, dataset) -> None:
    """Every shard's result arrived exactly once."""
    counts = Counter(r.shard for r in results)
    assert set(counts) == {s.name for s in dataset.manifest.shards}
    assert set(counts.values()) == {1}


def run_while_killing(killer: Killer, dataset, job, expected: list[bytes], trial: int, **options):
    """Run ``job`` while ``killer`` strikes: the lines equal ``expected``, each shard's exactly once.
    Returns the run (its stats; ``killer.killed`` says what was hit)."""
    with killer:
        run = dataset.run(job, **options)
        results = list(run)
    assert sorted_lines(results) == expected, f"trial {trial}"
    check_once(results, dataset)
    return run


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
