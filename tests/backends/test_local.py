"""The local backend: Dask's threaded scheduler (grep) on this machine."""

from __future__ import annotations

import pytest

from tests.backends.conformance import BackendConformance


class TestLocalOneWorker(BackendConformance):
    @pytest.fixture
    def run_options(self):
        return {"backend": "local", "workers": 1}


class TestLocalAllCores(BackendConformance):
    @pytest.fixture
    def run_options(self):
        return {"backend": "local"}


def test_backend_is_reused_across_calls():
    from workbench.backends import get_backend

    assert get_backend("local", workers=2) is get_backend("local", workers=2)
    assert get_backend("local", workers=1) is not get_backend("local", workers=2)


def test_a_pool_whose_workers_cannot_start_is_one_error_line_and_leaves_nothing_running(nci_dataset):
    """Worker processes that fail at start (here: a preload module that does not exist, read by the
    pool's interpreter only) end the command after ``WORKBENCH_POOL_START_TIMEOUT`` with one
    ``error:`` line last and exit 2, instead of waiting for workers forever; no interpreter is left."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import psutil

    env = {**os.environ, "WORKBENCH_POOL_START_TIMEOUT": "5",
           "DASK_DISTRIBUTED__WORKER__PRELOAD": '["workbench_no_such_module"]'}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "workbench"), "substructure", "c1ccccc1", "-c",
                             "--dataset", str(nci_dataset.directory), "--workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, psutil.Process] = {}  # every process the command started, while it ran
    commands: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    seen.setdefault(child.pid, child)
                    commands[child.pid] = commands.get(child.pid) or _cmdline(child)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2 and out == ""
    assert err.splitlines()[-1].startswith("error: the local pool's 1 worker processes did not start within 5 s")
    interpreters = [pid for pid, command in commands.items() if command.startswith(f"{sys.executable} -m dask spec")]
    assert interpreters  # the pool's interpreter was started, and it is gone with everything else
    time.sleep(1)
    assert not [c for c in seen.values() if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _cmdline(proc) -> str:
    import psutil

    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""
