"""The cluster file model and the shard balancing rule (no nodes needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cluster.inventory import dump_cluster, load_cluster
from workbench.cluster.placement import balance
from workbench.errors import ClusterError
from workbench.storage.manifest import ShardInfo

HEAD = {"coordinator": "10.0.0.1", "known_hosts": "known_hosts", "key": "id_ed25519", "data_dir": "/srv/wb"}


def write(tmp_path: Path, head: dict, nodes: list[dict]) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(dump_cluster(head, nodes))
    return path


def test_valid_file_with_defaults_and_overrides(tmp_path):
    path = write(tmp_path, {**HEAD, "user": "pi"}, [
        {"name": "pi1", "host": "10.0.0.11"},
        {"name": "pi2", "host": "10.0.0.12", "user": "admin", "port": 2222, "cores": 4, "shared_dir": "/mnt/nfs/",
         "docker": "tcp://10.0.0.12:2375", "labels": ["pi4", "fast"], "python": "/opt/wb/bin/python"},
    ])
    cluster = load_cluster(path)
    pi1, pi2 = cluster.nodes
    assert cluster.coordinator == "10.0.0.1" and cluster.scheduler_port == 8786
    assert cluster.known_hosts == tmp_path / "known_hosts"  # relative to the cluster file
    assert (pi1.user, pi1.port, pi1.cores, pi1.key, pi1.data_dir) == ("pi", 22, None, tmp_path / "id_ed25519", "/srv/wb")
    assert (pi2.user, pi2.port, pi2.cores, pi2.shared_dir, pi2.labels) == ("admin", 2222, 4, "/mnt/nfs", ("pi4", "fast"))
    assert pi2.docker == "tcp://10.0.0.12:2375" and pi2.python == "/opt/wb/bin/python"


@pytest.mark.parametrize("head,nodes,message", [
    ({k: v for k, v in HEAD.items() if k != "coordinator"}, [{"name": "a", "host": "h"}], "needs `coordinator`"),
    ({k: v for k, v in HEAD.items() if k != "known_hosts"}, [{"name": "a", "host": "h"}], "needs `known_hosts`"),
    (HEAD, [], "no \\[\\[nodes\\]\\]"),
    (HEAD, [{"name": "a", "host": "h"}, {"name": "a", "host": "g"}], "'a' is used twice"),
    (HEAD, [{"name": "a", "host": "h", "port": 70000}], "port must be an integer"),
    (HEAD, [{"name": "a", "host": "h", "cores": 0}], "cores must be an integer"),
    (HEAD, [{"name": "a", "host": "h", "password": "x"}], "unknown key\\(s\\) password"),
    (HEAD, [{"name": "a", "host": "h", "data_dir": "relative/dir"}], "must be an absolute path"),
    (HEAD, [{"name": "bad name", "host": "h"}], "must be letters"),
    (HEAD, [{"name": "a"}], "host must be a non-empty string"),
    ({k: v for k, v in HEAD.items() if k != "key"}, [{"name": "a", "host": "h"}], "no SSH `key`"),
])
def test_invalid_files_are_rejected_with_the_reason(tmp_path, head, nodes, message):
    path = write(tmp_path, head, nodes)
    with pytest.raises(ClusterError, match=message):
        load_cluster(path)


def test_broken_toml_and_missing_file(tmp_path):
    (tmp_path / "bad.toml").write_text("[cluster\n")
    with pytest.raises(ClusterError, match="cannot read cluster file"):
        load_cluster(tmp_path / "bad.toml")
    with pytest.raises(ClusterError, match="does not exist"):
        load_cluster(tmp_path / "nope.toml")


def test_cli_reports_a_bad_cluster_file_in_one_line(tmp_path):
    path = write(tmp_path, HEAD, [{"name": "a", "host": "h", "port": "22"}])
    proc = subprocess.run([sys.executable, "-m", "workbench", "nodes", "--cluster", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: {path}: node 'a' port must be an integer in 1..65535, not '22'"]


def shards(sizes: list[int]) -> list[ShardInfo]:
    return [ShardInfo(f"s{i}", f"shards/s{i}.tsv", 1, b, "0" * 64) for i, b in enumerate(sizes)]


def test_balance_spreads_bytes_and_replicas_on_distinct_nodes():
    sizes = [900, 800, 700, 600, 500, 400, 300, 200, 100, 100]
    placed = balance(shards(sizes), ["a", "b", "c"], 2)
    load = {n: 0 for n in "abc"}
    for shard, size in zip(shards(sizes), sizes):
        nodes = placed[shard.name]
        assert len(nodes) == 2 and len(set(nodes)) == 2
        for n in nodes:
            load[n] += size
    assert sum(load.values()) == 2 * sum(sizes)
    assert max(load.values()) - min(load.values()) <= max(sizes)


def test_balance_rejects_more_replicas_than_nodes():
    with pytest.raises(ClusterError, match="--replicas must be between 1 and the number of nodes \\(2\\)"):
        balance(shards([1, 2]), ["a", "b"], 3)
