"""Which nodes may run each shard, from the manifest's placement (no nodes needed)."""

from __future__ import annotations

import re

import pytest

from workbench.cluster.identity import cluster_id
from workbench.cluster.inventory import dump_cluster, load_cluster
from workbench.cluster.locality import docker_targets, shard_holders
from workbench.errors import ClusterError
from workbench.storage.manifest import Manifest, ShardInfo

SHARDS = [ShardInfo(f"s{i}", f"shards/s{i}.tsv", 10, 1000 - 100 * i, "0" * 64) for i in range(6)]


@pytest.fixture
def cluster(tmp_path):
    nodes = [{"name": "a", "host": "10.0.0.1"}, {"name": "b", "host": "10.0.0.2", "data_dir": "/other"},
             {"name": "c", "host": "10.0.0.3"}]
    path = tmp_path / "c.toml"
    path.write_text(dump_cluster({"coordinator": "10.0.0.9", "known_hosts": "kh", "key": "k", "data_dir": "/srv",
                                  "shared_dir": "/nfs"}, nodes))
    return load_cluster(path)


def manifest(placement: dict | None, cluster=None) -> Manifest:
    """A manifest with this placement, recorded as made for ``cluster``."""
    if placement and cluster is not None:
        placement = {**placement, "cluster_id": cluster_id(cluster)}
    return Manifest(sources=[], records=60, rejected=0, shard_size=1000, shards=SHARDS, placement=placement)


def local_placement(shards: dict[str, list[str]]) -> dict:
    return {"mode": "local", "replicas": 2, "shards": shards,
            "roots": {"a": "/srv/ds-1", "b": "/other/ds-1", "c": "/srv/ds-1"}}


def test_replicas_with_the_same_root_share_a_task(cluster):
    placement = local_placement({s.name: ["a", "c"] for s in SHARDS})
    chosen = shard_holders(manifest(placement, cluster), cluster, {"a", "b", "c"})
    assert [s.name for s, _, _ in chosen] == [s.name for s in SHARDS]  # largest first
    assert all(root == "/srv/ds-1" and nodes == ["a", "c"] for _, root, nodes in chosen)


def test_replicas_under_different_roots_are_balanced_by_bytes(cluster):
    placement = local_placement({s.name: ["a", "b"] for s in SHARDS})
    chosen = shard_holders(manifest(placement, cluster), cluster, {"a", "b", "c"})
    load = {"a": 0, "b": 0}
    for shard, root, [node] in chosen:
        assert root == placement["roots"][node]
        load[node] += shard.bytes
    assert abs(load["a"] - load["b"]) <= max(s.bytes for s in SHARDS)


def test_a_down_node_falls_back_to_another_replica(cluster):
    placement = local_placement({s.name: ["a", "b"] for s in SHARDS})
    chosen = shard_holders(manifest(placement, cluster), cluster, {"b", "c"})
    assert all(nodes == ["b"] and root == "/other/ds-1" for _, root, nodes in chosen)


def test_no_live_holder_names_the_shard(cluster):
    placement = local_placement({**{s.name: ["a", "b"] for s in SHARDS}, "s3": ["c"]})
    with pytest.raises(ClusterError, match=r"shard s3: none of the nodes holding it \(c\) is available"):
        shard_holders(manifest(placement, cluster), cluster, {"a", "b"})


def test_no_live_replica_falls_back_to_the_shared_copy(cluster):
    placement = {**local_placement({s.name: ["a"] for s in SHARDS}), "shared_roots": {"b": "/nfs/ds", "c": "/nfs/ds"}}
    chosen = shard_holders(manifest(placement, cluster), cluster, {"b", "c"})
    assert all(root == "/nfs/ds" and nodes == ["b", "c"] for _, root, nodes in chosen)
    live = shard_holders(manifest(placement, cluster), cluster, {"a", "b"})
    assert all(root == "/srv/ds-1" and nodes == ["a"] for _, root, nodes in live)  # local copy first


def test_shared_mode_runs_anywhere(cluster):
    placement = {"mode": "shared", "shards": None, "roots": {"a": "/nfs/ds", "b": "/nfs/ds", "c": "/nfs/ds"}}
    chosen = shard_holders(manifest(placement, cluster), cluster, {"a", "b", "c"})
    assert all(root == "/nfs/ds" and nodes == ["a", "b", "c"] for _, root, nodes in chosen)


def test_docker_targets_use_the_engines_of_nodes_holding_each_shard(tmp_path):
    nodes = [{"name": "a", "host": "10.0.0.1", "docker": "ssh://pi@10.0.0.1"}, {"name": "b", "host": "10.0.0.2"},
             {"name": "c", "host": "10.0.0.3", "docker": "ssh://pi@10.0.0.3"}]
    path = tmp_path / "c.toml"
    path.write_text(dump_cluster({"coordinator": "10.0.0.9", "known_hosts": "kh", "key": "k", "data_dir": "/srv"}, nodes))
    placement = local_placement({s.name: (["a", "b"] if i % 2 else ["b", "c"]) for i, s in enumerate(SHARDS)})
    placement["roots"]["b"] = "/srv/ds-1"
    targets = docker_targets(tmp_path, manifest(placement, load_cluster(path)), str(path))
    for task, engines in targets:
        expected = "a" if int(task.shard.name[1:]) % 2 else "c"
        assert [n.name for n in engines] == [expected] and task.root == "/srv/ds-1"
        assert engines[0].docker == f"ssh://pi@10.0.0.{'1' if expected == 'a' else '3'}"


def test_unplaced_or_foreign_placement_is_refused(cluster):
    with pytest.raises(ClusterError, match="not placed on a cluster; run `workbench place"):
        shard_holders(manifest(None), cluster, {"a"})
    foreign = {"mode": "local", "shards": {s.name: ["x"] for s in SHARDS}, "roots": {"x": "/srv/ds"}}
    with pytest.raises(ClusterError, match="not placed on this cluster: run workbench place"):
        shard_holders(manifest(foreign), cluster, {"a"})


def test_a_placement_for_another_cluster_file_with_the_same_nodes_is_refused(cluster, tmp_path):
    twin = tmp_path / "twin"
    twin.mkdir()
    (twin / "c.toml").write_text(cluster.path.read_text())
    placement = local_placement({s.name: ["a", "b"] for s in SHARDS})
    with pytest.raises(ClusterError, match="not placed on this cluster: run workbench place"):
        shard_holders(manifest(placement, load_cluster(twin / "c.toml")), cluster, {"a", "b", "c"})


def test_other_host_keys_make_another_cluster(cluster):
    before = cluster_id(cluster)
    cluster.known_hosts.write_text("10.0.0.1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZ3eXl6enp6enp6enp6enp6enp6enp6enp6enp6enp6\n")
    assert cluster_id(cluster) != before


@pytest.mark.parametrize("root", ["/etc", "/srv", "/srv/../etc/ds", "/srvx/ds", "srv/ds"])
def test_a_placement_root_outside_the_nodes_directories_is_refused(cluster, root):
    placement = local_placement({s.name: ["a"] for s in SHARDS})
    placement["roots"]["a"] = root
    with pytest.raises(ClusterError, match=f"node 'a' root '{re.escape(root)}' is outside its data_dir /srv"):
        shard_holders(manifest(placement, cluster), cluster, {"a", "b", "c"})
