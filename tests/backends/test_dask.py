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
def dask_processes(tmp: Path, workers: int = 2, dashboard: bool = False, env: dict[str, str] | None = None):
    """A ``dask scheduler`` on loopback and ``workers`` single-threaded ``dask worker`` processes (one nanny
    each); yields the scheduler's address once they joined."""
    require("dask", (BIN / "dask").exists(), "the `dask` command is not installed")
    env = {**os.environ, **(env or {})}
    sched_file = tmp / "scheduler.json"
    board = ["--dashboard-address", "127.0.0.1:0"] if dashboard else ["--no-dashboard"]
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0", *board,
                               "--scheduler-file", str(sched_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file),
                                       "--nworkers", str(workers), "--nthreads", "1", "--no-dashboard"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env={**env, "WORKBENCH_NODE": "dask-test-node"}))
        address = json.loads(sched_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
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
        assert run.dashboard_link is None  # started with --no-dashboard: its HTTP server has no dashboard


def test_unreachable_scheduler_is_one_error_line(nci_dataset):
    proc = subprocess.run([str(BIN / "workbench"), "grep", "C", "--dataset", str(nci_dataset.directory),
                           "--backend", "dask", "--scheduler", "tcp://127.0.0.1:9"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_a_scheduler_with_a_dashboard_is_linked(nci_dataset, tmp_path):
    """A scheduler serving its dashboard (bokeh installed): the run returns the link, and it answers."""
    import urllib.request

    from workbench.jobs.grep import GrepJob

    with dask_processes(tmp_path, 1, dashboard=True) as address:
        run = nci_dataset.run(GrepJob("C", count_only=True), backend="dask", scheduler=address)
        list(run)
        link = run.dashboard_link
        assert link and link.startswith("http://127.0.0.1:") and link.endswith("/status")
        with urllib.request.urlopen(link, timeout=30) as page:
            assert page.status == 200
