"""`workbench place` on a real testbed: replicas, checksums on the nodes, resume, shared mode."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import workbench as wb
from tests.cluster.conftest import NODES, node_file
from workbench.cluster.placement import place
from workbench.errors import ClusterError
from workbench.testing import testbed as tb

pytestmark = pytest.mark.ssh


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_replicas_on_distinct_nodes_with_matching_checksums(testbed, placed):
    placement = placed.manifest.placement
    assert placement["mode"] == "local" and placement["replicas"] == 2
    nodes = [f"node{i + 1}" for i in range(NODES)]
    for shard in placed.manifest.shards:
        holders = placement["shards"][shard.name]
        assert len(holders) == 2 and len(set(holders)) == 2
        for node in nodes:
            copy = node_file(testbed, node, placed, shard.path)
            if node in holders:
                assert sha(copy) == shard.sha256
            else:
                assert not copy.exists()  # each node holds only its shards
    assert "key" not in json.dumps(placement).lower()  # no secrets in the manifest


def test_nodes_see_only_their_own_storage(testbed, placed):
    """The node's data_dir is private to it: the host's view of that path is empty."""
    root = placed.manifest.placement["roots"]["node1"]
    assert not Path(root).exists()
    assert node_file(testbed, "node1", placed, "").is_dir()


def test_rerun_copies_only_missing_or_mismatched_shards(testbed, placed):
    placement = placed.manifest.placement
    first, second = placed.manifest.shards[0], placed.manifest.shards[1]
    deleted = node_file(testbed, placement["shards"][first.name][0], placed, first.path)
    corrupted = node_file(testbed, placement["shards"][second.name][1], placed, second.path)
    deleted.unlink()
    corrupted.write_bytes(corrupted.read_bytes()[:-10] + b"0123456789")
    reports = place(placed.directory, testbed, "local", replicas=2)
    assert sum(r.copied for r in reports) == 2
    assert sum(r.bytes_copied for r in reports) == first.bytes + second.bytes
    assert sha(deleted) == first.sha256 and sha(corrupted) == second.sha256
    again = place(placed.directory, testbed, "local", replicas=2)
    assert sum(r.copied for r in again) == 0
    assert sum(r.verified for r in again) == 2 * len(placed.manifest.shards)
    placed.reload()


def test_place_cli_json(testbed, placed):
    proc = subprocess.run([sys.executable, "-m", "workbench", "place", "--dataset", str(placed.directory),
                           "--cluster", str(testbed), "--replicas", "2", "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    reports = json.loads(proc.stdout)
    assert sorted(r["node"] for r in reports) == [f"node{i + 1}" for i in range(NODES)]
    assert all(r["copied"] == 0 and r["verified"] == r["files"] for r in reports)


def test_too_many_replicas_is_refused(testbed, placed):
    with pytest.raises(ClusterError, match="--replicas must be between 1 and the number of nodes"):
        place(placed.directory, testbed, "local", replicas=NODES + 1)


@pytest.fixture
def shared_copy(testbed, nci_dataset):
    """The NCI dataset in the testbed's shared directory (what every node sees)."""
    target = tb.testbed_dir(testbed) / "shared" / "nci-shared"
    shutil.copytree(nci_dataset.directory, target)
    yield wb.open_dataset(target)
    shutil.rmtree(target)


def test_shared_mode_verifies_every_node(testbed, shared_copy):
    reports = place(shared_copy.directory, testbed, "shared")
    assert len(reports) == NODES
    assert all(r.verified == len(shared_copy.manifest.shards) and r.copied == 0 for r in reports)
    shared_copy.reload()
    assert shared_copy.manifest.placement["mode"] == "shared"
    assert set(shared_copy.manifest.placement["roots"].values()) == {str(shared_copy.directory)}


def test_local_after_shared_keeps_the_shared_copy_as_fallback(testbed, shared_copy):
    place(shared_copy.directory, testbed, "shared")
    place(shared_copy.directory, testbed, "local", replicas=1)
    shared_copy.reload()
    placement = shared_copy.manifest.placement
    assert placement["mode"] == "local"
    assert set(placement["shared_roots"].values()) == {str(shared_copy.directory)}


def test_shared_mode_detects_a_differing_shard(testbed, shared_copy):
    victim = shared_copy.directory / shared_copy.manifest.shards[2].path
    victim.write_bytes(victim.read_bytes().replace(b"C", b"N", 1))
    with pytest.raises(ClusterError, match=f"{shared_copy.manifest.shards[2].path} differs"):
        place(shared_copy.directory, testbed, "shared")


def test_shared_mode_waits_for_the_mount_then_fails_clearly(testbed, nci_dataset, tmp_path):
    absent = tmp_path / "nci-not-on-nfs"
    shutil.copytree(nci_dataset.directory, absent)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "workbench", "place", "--dataset", str(absent), "--cluster",
                           str(testbed), "--mode", "shared", "--mount-timeout", "1.5", "--mount-interval", "0.5"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and "node 'node" in line
    assert f"shared/{absent.name}/manifest.json did not appear within 1.5 s" in line
    assert time.monotonic() - start < 30


def test_shared_mode_picks_up_a_late_mount(testbed, nci_dataset, tmp_path):
    """The nodes' copy appearing while `place` waits (the NFS server booted late) is accepted."""
    import threading

    coordinator_copy = tmp_path / "late"
    shutil.copytree(nci_dataset.directory, coordinator_copy)
    on_nodes = tb.testbed_dir(testbed) / "shared" / "late"
    timer = threading.Timer(1.0, shutil.copytree, (nci_dataset.directory, on_nodes))
    timer.start()
    try:
        start = time.monotonic()
        reports = place(coordinator_copy, testbed, "shared", mount_timeout=30, mount_interval=0.2)
        assert time.monotonic() - start >= 1.0
        assert [r.verified for r in reports] == [len(nci_dataset.manifest.shards)] * NODES
    finally:
        timer.join()
        shutil.rmtree(on_nodes, ignore_errors=True)
