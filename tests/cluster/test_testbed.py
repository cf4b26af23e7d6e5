"""`workbench testbed up|down`: real namespaces and sshd processes, and nothing left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.cluster.conftest import require_testbed
from tests.helpers import require
from workbench.cluster.daskcluster import state_path
from workbench.cluster.processes import pid_alive
from workbench.testing import testbed as tb

pytestmark = pytest.mark.ssh


def wb(*args: str, user: int | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "workbench", *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd="/")


def test_testbed_needs_root(tmp_path):
    require_testbed()
    require("ssh", shutil.which("setpriv") is not None, "setpriv (util-linux) is not installed")
    tmp_path.chmod(0o777)
    proc = wb("testbed", "up", "--nodes", "2", "--cluster", str(tmp_path / "c.toml"), user=65534)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: the testbed needs root (it creates network namespaces, "
                                                "links and sshd processes)"]
    assert not (tmp_path / "c.toml").exists()


def test_down_after_cluster_up_leaves_nothing_behind(tmp_path):
    require_testbed()
    cluster_file = tmp_path / "two.toml"
    up = wb("testbed", "up", "--nodes", "2", "--cluster", str(cluster_file))
    assert up.returncode == 0, up.stderr
    state = tb.read_testbed(cluster_file)
    settings = tomllib.loads(cluster_file.read_text())
    assert [n["host"] for n in settings["nodes"]] == [n["address"] for n in state["nodes"].values()]
    namespaces = [n["netns"] for n in state["nodes"].values()]
    assert set(namespaces) <= set(_lines(["ip", "netns", "list"]))
    sshd_pids = [int((tb.testbed_dir(cluster_file) / "nodes" / n / "sshd.pid").read_text()) for n in state["nodes"]]
    assert all(pid_alive(p) for p in sshd_pids)

    started = wb("cluster", "up", "--cluster", str(cluster_file))
    assert started.returncode == 0, started.stderr
    from workbench.cluster.daskcluster import read_state

    dask = read_state(cluster_file)
    worker_pids = [n["pid"] for n in dask["nodes"].values()]

    down = wb("testbed", "down", "--cluster", str(cluster_file))
    assert down.returncode == 0, down.stderr
    assert "removed dask cluster" in down.stderr
    assert not [p for p in [*sshd_pids, *worker_pids, dask["scheduler_pid"]] if pid_alive(p)]
    assert not set(namespaces) & set(_lines(["ip", "netns", "list"]))
    assert state["bridge"] not in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert state["host"] not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert os.listdir(tmp_path) == []  # cluster file, keys, node storage, state and logs all gone

    again = wb("testbed", "down", "--cluster", str(cluster_file))
    assert again.returncode == 2 and again.stderr.startswith("error: no testbed is up for")


def test_cluster_up_with_an_unreachable_node(tmp_path):
    require_testbed()
    cluster_file = tmp_path / "two.toml"
    tb.testbed_up(cluster_file, 2)
    try:
        tb.stop_node(cluster_file, "node2")
        refused = wb("cluster", "up", "--cluster", str(cluster_file))
        assert refused.returncode == 2
        assert refused.stderr.strip().splitlines() == ["error: could not start workers on node2: connection refused"]
        assert not state_path(cluster_file).exists()  # the scheduler it started is gone again
        partial = wb("cluster", "up", "--allow-missing", "--cluster", str(cluster_file))
        assert partial.returncode == 0, partial.stderr
        assert "warning: no workers on node2: connection refused" in partial.stderr
        status = wb("cluster", "status", "--cluster", str(cluster_file), "--json")
        assert [(r["node"], r["connected"]) for r in json.loads(status.stdout)] == [("node1", 1), ("node2", 0)]
    finally:
        tb.testbed_down(cluster_file)
    assert not [line for line in _lines(["ip", "netns", "list"]) if line.startswith(tb.testbed_tag(cluster_file))]


def test_invalid_subnet_is_rejected(tmp_path):
    require_testbed()
    proc = wb("testbed", "up", "--nodes", "2", "--subnet", "8.8.8.0/24", "--cluster", str(tmp_path / "c.toml"))
    assert proc.returncode == 2 and proc.stderr.strip() == "error: --subnet 8.8.8.0/24 is not a private network"
    assert not Path(tmp_path / "c.toml").exists() and not tb.testbed_dir(tmp_path / "c.toml").exists()


def test_an_existing_cluster_file_is_not_overwritten(tmp_path):
    require_testbed()
    existing = tmp_path / "mine.toml"
    existing.write_text("# my real cluster\n")
    proc = wb("testbed", "up", "--nodes", "1", "--cluster", str(existing))
    assert proc.returncode == 2 and "already exists" in proc.stderr
    assert existing.read_text() == "# my real cluster\n" and not tb.testbed_dir(existing).exists()


def _lines(argv: list[str]) -> list[str]:
    return [line.split()[0] for line in subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()]
