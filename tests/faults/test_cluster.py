"""Faults across testbed nodes: a whole node lost mid-run (`stop_node`), with `--backend dask --cluster`
and `--backend docker --cluster`; containers killed on the nodes' engines.

This suite builds its own testbed (nodes are killed on purpose). Every node's Docker engine is this
machine's, reached through a forwarder on the node's own address that dies with the node.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

import workbench as wb
from tests.cluster.conftest import cluster_variant, testbed  # noqa: F401  (this suite's own testbed)
from tests.docker.conftest import (  # noqa: F401  (fixtures)
    docker_client,
    existing_containers,
    wait_for_no_containers,
    worker_images,
)
from tests.faults.conftest import SLOW_PATTERN, Killer, own_containers, run_while_killing, sorted_lines, trial_rngs
from tests.helpers import gnu_grep, shard_files
from workbench.backends import close_all
from workbench.cluster.inventory import load_cluster
from workbench.cluster.placement import place
from workbench.jobs.grep import GrepJob

pytestmark = [pytest.mark.faults, pytest.mark.ssh]

NODE_TRIALS = int(os.environ.get("WORKBENCH_FAULT_NODE_TRIALS", os.environ.get("WORKBENCH_FAULT_TRIALS", "20")))


@pytest.fixture(scope="module")
def nodes(testbed) -> list[str]:  # noqa: F811
    return [n.name for n in load_cluster(testbed).nodes]


@pytest.fixture(scope="module")
def replicated(testbed, faults_dataset, tmp_path_factory):  # noqa: F811
    """The faults dataset on the nodes' own disks, each shard on 2 of the 3 nodes."""
    copy = tmp_path_factory.mktemp("replicated") / "faults"
    shutil.copytree(faults_dataset.directory, copy)
    place(copy, testbed, "local", replicas=2)
    return wb.open_dataset(copy)


@pytest.fixture(scope="module")
def shared(testbed, engines_file, faults_dataset):  # noqa: F811
    """The faults dataset in the testbed's shared directory (every node holds every shard), placed for
    the cluster file naming the nodes' engines."""
    from workbench.testing.testbed import testbed_dir

    target = testbed_dir(testbed) / "shared" / "faults"
    shutil.copytree(faults_dataset.directory, target)
    place(target, engines_file, "shared")
    yield wb.open_dataset(target)
    shutil.rmtree(target)


@pytest.fixture(scope="module")
def dask_cluster(testbed, replicated):  # noqa: F811
    from workbench.cluster.daskcluster import cluster_down, cluster_up

    cluster_up(testbed, timeout=120)
    yield testbed
    close_all()
    cluster_down(testbed)


@pytest.fixture(scope="module")
def engines_file(testbed, nodes, tmp_path_factory):  # noqa: F811
    """The cluster file with every node's `docker` engine on the node's own address (plain tcp://, on
    the testbed's private network: runs pass ``insecure_engine``)."""
    from workbench.testing.testbed import start_engine_proxy

    urls = {n: start_engine_proxy(testbed, n) for n in nodes}
    return cluster_variant(testbed, tmp_path_factory.mktemp("engines") / "cluster.toml",
                           nodes={n: {"docker": url} for n, url in urls.items()})


def revive(cluster_file, node: str) -> None:
    """Bring a stopped node back: sshd, its engine forwarder, its Dask workers (when the cluster is up)."""
    from workbench.cluster.daskcluster import is_up, start_node_workers
    from workbench.testing.testbed import start_engine_proxy, start_sshd

    start_sshd(cluster_file, node)
    start_engine_proxy(cluster_file, node)
    if is_up(cluster_file):
        start_node_workers(cluster_file, node, timeout=120)


def node_processes(cluster_file, node: str) -> list[str]:
    from workbench.testing.testbed import read_testbed

    netns = read_testbed(cluster_file)["nodes"][node]["netns"]
    return subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()


def lost_node_trials(name: str, cluster_file, dataset, nodes: list[str], options: dict) -> None:
    """Trials that each stop a random node at a random moment: the result equals grep's, each shard once,
    run by a node holding it; the stopped node has nothing left running; then it is revived."""
    from workbench.testing.testbed import stop_node

    job = GrepJob(SLOW_PATTERN)
    expected = gnu_grep(shard_files(dataset.directory), "-e", SLOW_PATTERN)
    start = time.perf_counter()
    assert sorted_lines(dataset.run(job, **options)) == expected
    seconds = time.perf_counter() - start
    placement = dataset.manifest.placement
    for trial, rng in trial_rngs(name, NODE_TRIALS):
        victim = rng.choice(nodes)
        killer = Killer(rng, lambda v=victim: [v], lambda n: stop_node(cluster_file, n), window=(0.05, 0.8 * seconds))
        run = run_while_killing(killer, dataset, job, expected, trial, **options)
        for entry in run.stats.shards:
            holders = nodes if placement["mode"] == "shared" else placement["shards"][entry["shard"]]
            assert entry["node"] in holders
        if killer.killed:
            assert node_processes(cluster_file, victim) == []
            revive(cluster_file, victim)


def test_a_lost_node_dask_cluster(replicated, dask_cluster, nodes):
    lost_node_trials("dask-cluster", dask_cluster, replicated, nodes, {"backend": "dask", "cluster": str(dask_cluster)})


@pytest.mark.docker
def test_a_lost_node_engine_docker_cluster(shared, testbed, engines_file, nodes, worker_images,  # noqa: F811
                                           docker_client, existing_containers):  # noqa: F811
    lost_node_trials("docker-cluster", testbed, shared, nodes,
                     {"backend": "docker", "cluster": str(engines_file), "insecure_engine": True})
    close_all()
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


@pytest.mark.docker
def test_killed_containers_docker_cluster(shared, engines_file, nodes, worker_images, docker_client,  # noqa: F811
                                          existing_containers):  # noqa: F811
    job = GrepJob(SLOW_PATTERN)
    expected = gnu_grep(shard_files(shared.directory), "-e", SLOW_PATTERN)
    options = {"backend": "docker", "cluster": str(engines_file), "insecure_engine": True}
    for trial, rng in trial_rngs("docker-cluster-containers", NODE_TRIALS):
        killer = Killer(rng, lambda: own_containers(docker_client), lambda c: c.kill(), window=(0.05, 1.0))
        run = run_while_killing(killer, shared, job, expected, trial, **options)
        assert {s["node"] for s in run.stats.shards} == set(nodes)  # shards handed out to every node
    close_all()
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []
