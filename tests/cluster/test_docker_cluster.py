"""`--backend docker --cluster`: containers on every node's engine, each shard run on a node holding it.

The testbed's nodes all name this machine's engine as theirs (its dockerd sees what they see in the
shared directory), so a dataset placed in ``shared`` mode runs in containers of all three nodes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

import workbench as wb
from tests.cluster.conftest import cluster_variant
from tests.docker.conftest import docker_client, existing_containers, wait_for_no_containers, worker_images  # noqa: F401
from workbench.backends import close_all
from workbench.cluster.inventory import load_cluster
from workbench.cluster.placement import place
from workbench.errors import BackendError
from workbench.jobs.grep import GrepJob

pytestmark = [pytest.mark.ssh, pytest.mark.docker]

ENGINE = "unix:///var/run/docker.sock"
PATTERNS = [("C(=O)N", {"fixed": True}), ("Cl|Br", {"extended": True}), ("[nH]", {}), ("cl", {"ignore_case": True})]


@pytest.fixture(scope="module")
def node_names(testbed) -> list[str]:
    return [n.name for n in load_cluster(testbed).nodes]


@pytest.fixture(scope="module")
def engines_file(testbed, node_names, tmp_path_factory):
    """The testbed's cluster file with this machine's engine as every node's `docker`."""
    return cluster_variant(testbed, tmp_path_factory.mktemp("docker-cluster") / "cluster.toml",
                           nodes={n: {"docker": ENGINE} for n in node_names})


@pytest.fixture(scope="module")
def shared(testbed, engines_file, nci_dataset):
    """The NCI set in the testbed's shared directory, placed in shared mode (every node holds every shard)
    for the cluster file naming the engines (a placement belongs to the cluster file it was made with)."""
    from workbench.testing.testbed import testbed_dir

    target = testbed_dir(testbed) / "shared" / "nci-docker"
    shutil.copytree(nci_dataset.directory, target)
    place(target, engines_file, "shared")
    yield wb.open_dataset(target)
    shutil.rmtree(target)


@pytest.fixture(autouse=True)
def no_container_left(docker_client, existing_containers):  # noqa: F811
    """Once the backend is closed (as at exit), no worker container of these tests is left."""
    yield
    close_all()
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


def lines(dataset, job, **options) -> list[bytes]:
    return sorted(line for r in dataset.run(job, **options) for line in r.payload.splitlines())


@pytest.mark.parametrize("pattern,flags", PATTERNS)
def test_grep_on_node_engines_equals_local_backend(shared, engines_file, worker_images, node_names,  # noqa: F811
                                                   pattern, flags):
    job = GrepJob(pattern, **flags)
    expected = lines(shared, job, backend="local")
    run = shared.run(job, backend="docker", cluster=str(engines_file))
    assert sorted(line for r in run for line in r.payload.splitlines()) == expected
    assert expected
    shards = run.stats.shards
    assert sorted(s["shard"] for s in shards) == sorted(s.name for s in shared.manifest.shards)
    assert {s["node"] for s in shards} == set(node_names)  # 8 shards balanced over three 1-core nodes
    for node in node_names:  # each node's pool stays within its cores (1): one long-lived container
        assert len({s["worker"] for s in shards if s["node"] == node}) == 1


def test_grep_cli_with_docker_cluster_reports_nodes(shared, engines_file, worker_images, node_names,  # noqa: F811
                                                    docker_client, existing_containers, tmp_path):  # noqa: F811
    stats = tmp_path / "stats.json"
    args = [sys.executable, "-m", "workbench", "grep", "-E", "Cl|Br", "-d", str(shared.directory)]
    local = subprocess.run(args, capture_output=True, timeout=120)
    proc = subprocess.run([*args, "--backend", "docker", "--cluster", str(engines_file), "--stats-json", str(stats)],
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert local.returncode == 0 and local.stdout
    assert sorted(proc.stdout.splitlines()) == sorted(local.stdout.splitlines())
    shards = json.loads(stats.read_text())["shards"]
    assert sorted(s["shard"] for s in shards) == sorted(s.name for s in shared.manifest.shards)
    assert {s["node"] for s in shards} <= set(node_names) and len({s["node"] for s in shards}) > 1
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []  # the CLI removed its own


def test_unreachable_node_engine_is_named(testbed, engines_file, tmp_path, docker_client):  # noqa: F811
    from workbench.cluster.backends import ClusterDockerBackend as DockerBackend

    broken = cluster_variant(engines_file, tmp_path / "broken.toml", nodes={"node2": {"docker": "tcp://127.0.0.1:1"}})
    with pytest.raises(BackendError, match="node 'node2': cannot reach the Docker engine at tcp://127.0.0.1:1"):
        DockerBackend(cluster=str(broken))


def test_node_containers_mount_the_node_root_and_go_when_stopped_early(shared, engines_file, worker_images,  # noqa: F811
                                                                       node_names, docker_client,  # noqa: F811
                                                                       existing_containers):  # noqa: F811
    from tests.docker.conftest import our_containers
    from workbench.cluster.backends import ClusterDockerBackend as DockerBackend

    with DockerBackend(cluster=str(engines_file)) as backend:
        assert backend.workers == len(node_names)  # one scheduler thread per node core
        results = backend.map_shards(GrepJob("C"), shared.directory, shared.manifest)
        next(results)
        running = our_containers(docker_client, existing_containers)
        assert 0 < len(running) <= len(node_names)  # at most one per 1-core node
        for container in running:
            container.reload()
            mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
            assert (mounts["/data"]["RW"], mounts["/data"]["Source"]) == (False, shared.manifest.placement["roots"][node_names[0]])
            assert set(mounts) <= {"/data", "/out"}  # /out: output files, for an engine on this host only
        results.close()
        assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


def test_a_plain_tcp_engine_on_another_node_needs_tls_or_insecure(testbed, engines_file, tmp_path):
    """An open engine is root on its node: refused unless TLS is configured or --insecure-engine is given."""
    from workbench.cluster.backends import ClusterDockerBackend as DockerBackend

    url = f"tcp://{load_cluster(testbed).node('node2').host}:2375"  # the testbed node: nothing listens there
    open_engine = cluster_variant(engines_file, tmp_path / "open.toml", nodes={"node2": {"docker": url}})
    with pytest.raises(BackendError, match=f"node 'node2': Docker engine {url} is plain TCP on another machine: "
                                           "whoever reaches it is root there; use ssh://, or TLS .*--insecure-engine"):
        DockerBackend(cluster=str(open_engine))
    with pytest.raises(BackendError, match=f"node 'node2': cannot reach the Docker engine at {url}: connection refused"):
        DockerBackend(cluster=str(open_engine), insecure_engine=True)
