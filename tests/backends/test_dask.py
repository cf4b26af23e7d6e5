"""The dask backend against real ``dask scheduler`` and ``dask worker`` processes."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.backends.conformance import BackendConformance
from tests.helpers import require

BIN = Path(sys.executable).parent


@contextlib.contextmanager
def dask_processes(tmp: Path, env: dict[str, str] | None = None):
    """A scheduler and two single-threaded worker processes (one nanny each) on loopback; yields its address."""
    require("dask", (BIN / "dask").exists(), "the `dask` command is not installed")
    env = {**os.environ, **(env or {})}
    sched_file = tmp / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file),
                                       "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**env, "WORKBENCH_NODE": "dask-test-node"}))
        address = json.loads(sched_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        from workbench.backends import close_all

        close_all()  # disconnect cached clients before the scheduler goes away
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A scheduler and two single-threaded worker processes on loopback."""
    with dask_processes(tmp_path_factory.mktemp("dask")) as address:
        yield address


class TestDaskScheduler(BackendConformance):
    @pytest.fixture
    def run_options(self, scheduler):
        return {"backend": "dask", "scheduler": scheduler}

    def test_tasks_ran_on_the_worker_processes(self, nci_dataset, scheduler):
        from workbench.jobs.grep import GrepJob

        run = nci_dataset.run(GrepJob("C"), backend="dask", scheduler=scheduler)
        list(run)
        assert {s["node"] for s in run.stats.shards} == {"dask-test-node"}
        assert len({s["worker"] for s in run.stats.shards}) >= 1


def test_unreachable_scheduler_is_one_error_line(nci_dataset):
    proc = subprocess.run([str(BIN / "workbench"), "grep", "C", "--dataset", str(nci_dataset.directory),
                           "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
