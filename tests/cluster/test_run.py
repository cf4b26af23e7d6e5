"""Jobs on a Dask cluster across testbed nodes: same results as one machine, every shard run where it lives."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.backends.conformance import BackendConformance
from tests.chem.conftest import indexed_copy, read_records, substructure_truth
from tests.cluster.conftest import NODES, node_file
from tests.cluster.test_nodes import thermal_truth
from tests.helpers import gnu_grep, shard_files
from workbench.cluster.placement import place
from workbench.errors import ClusterError, JobError
from workbench.jobs.grep import GrepJob
from workbench.jobs.substructure import SubstructureJob

pytestmark = pytest.mark.ssh


def holders(dataset, shard: str) -> list[str]:
    return dataset.manifest.placement["shards"][shard]


class TestClusterConformance(BackendConformance):
    """The backend conformance suite, run by workers on the testbed nodes."""

    @pytest.fixture
    def nci_dataset(self, placed):
        return placed

    @pytest.fixture
    def run_options(self, dask_cluster):
        return {"backend": "dask", "cluster": str(dask_cluster)}

    def test_failing_shard_is_named(self, nci_dataset, run_options, tmp_path):
        """A shard missing on every node holding it fails by name; `place` then restores it."""
        cluster_file = run_options["cluster"]
        victim = nci_dataset.manifest.shards[1]
        for node in holders(nci_dataset, victim.name):
            node_file(cluster_file, node, nci_dataset, victim.path).unlink()
        with pytest.raises(JobError, match=victim.name):
            nci_dataset.grep("C", **run_options)
        assert sum(r.copied for r in place(nci_dataset.directory, cluster_file, "local", replicas=2)) == 2


def test_grep_cli_on_cluster_equals_gnu_grep_and_runs_where_shards_live(placed, dask_cluster, tmp_path):
    stats = tmp_path / "stats.json"
    proc = subprocess.run([sys.executable, "-m", "workbench", "grep", "-F", "C(=O)N", "-d", str(placed.directory),
                           "--backend", "dask", "--cluster", str(dask_cluster), "--stats-json", str(stats)],
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == gnu_grep(shard_files(placed.directory), "-F", "-e", "C(=O)N")
    shards = json.loads(stats.read_text())["shards"]
    assert sorted(s["shard"] for s in shards) == sorted(s.name for s in placed.manifest.shards)
    for s in shards:
        assert s["node"] in holders(placed, s["shard"]), s
        assert s["worker"].split("-")[0] == s["node"]
    assert len({s["node"] for s in shards}) > 1  # the work was spread over nodes


@pytest.fixture(scope="module")
def placed_indexed(placed, testbed, tmp_path_factory):
    """An indexed copy placed with one replica: index files travel with their shards."""
    ds = indexed_copy(placed.directory, tmp_path_factory.mktemp("indexed") / "nci-idx")
    place(ds.directory, testbed, "local", replicas=1)
    ds.reload()
    return ds


@pytest.mark.parametrize("query", ["c1ccccc1[N+](=O)[O-]", "[#6]C(=O)[OX2H1]", "C1CCCCC1"])
def test_substructure_on_cluster_equals_one_machine_and_rdkit(placed_indexed, dask_cluster, query):
    job = SubstructureJob(query=query)
    cluster_run = placed_indexed.run(job, backend="dask", cluster=str(dask_cluster))
    on_cluster = sorted(line for r in cluster_run for line in r.payload.splitlines())
    on_one_machine = sorted(line for r in placed_indexed.run(job) for line in r.payload.splitlines())
    assert on_cluster == on_one_machine
    truth = substructure_truth(read_records(placed_indexed.directory), query)
    assert sorted((int(c), s.decode()) for c, s in (line.split(b"\t", 1) for line in on_cluster)) == truth
    for entry in cluster_run.stats.shards:
        assert [entry["node"]] == holders(placed_indexed, entry["shard"])


def test_index_files_are_on_the_nodes(placed_indexed, testbed):
    for shard in placed_indexed.manifest.shards:
        [node] = holders(placed_indexed, shard.name)
        copy = node_file(testbed, node, placed_indexed, shard.index_path)
        assert copy.read_bytes() == (placed_indexed.directory / shard.index_path).read_bytes()


def test_cluster_status_lists_every_worker(dask_cluster):
    proc = subprocess.run([sys.executable, "-m", "workbench", "cluster", "status", "--cluster", str(dask_cluster),
                           "--json"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [r["node"] for r in rows] == [f"node{i + 1}" for i in range(NODES)]
    assert all(r["workers"] == r["connected"] == 1 for r in rows)


def test_second_cluster_up_is_refused(dask_cluster):
    from workbench.cluster.daskcluster import cluster_up

    with pytest.raises(ClusterError, match="already up"):
        cluster_up(dask_cluster)


def test_a_lost_node_falls_back_to_replicas(placed, dask_cluster):
    """With 2 replicas, every shard still runs — on a surviving node holding it — when node1 is gone."""
    from workbench.cluster.daskcluster import live_worker_names
    from workbench.testing.testbed import start_sshd, stop_node

    stop_node(dask_cluster, "node1")  # its sshd and its Dask worker processes
    try:
        deadline = time.monotonic() + 60
        while "node1" in live_worker_names(str(dask_cluster)) and time.monotonic() < deadline:
            time.sleep(0.2)
        run = placed.run(GrepJob("N", fixed=True), backend="dask", cluster=str(dask_cluster))
        got = sorted(line for r in run for line in r.payload.splitlines())
        assert got == gnu_grep(shard_files(placed.directory), "-F", "-e", "N")
        for entry in run.stats.shards:
            assert entry["node"] != "node1" and entry["node"] in holders(placed, entry["shard"])
    finally:
        start_sshd(dask_cluster, "node1")


def test_stats_json_records_node_temperatures_at_start_and_end(placed, dask_cluster, tmp_path):
    stats = tmp_path / "stats.json"
    proc = subprocess.run([sys.executable, "-m", "workbench", "grep", "-cF", "C(=O)N", "-d", str(placed.directory),
                           "--backend", "dask", "--cluster", str(dask_cluster), "--stats-json", str(stats)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    nodes = json.loads(stats.read_text())["nodes"]
    assert sorted(nodes) == [f"node{i + 1}" for i in range(NODES)]
    truth = thermal_truth()
    for moment in ("start", "end"):
        for health in (n[moment] for n in nodes.values()):
            assert "error" not in health and len(health["load"]) == 3
            assert (health["temperature"] is None) == (truth is None)


def test_cluster_dashboard_is_served_and_linked(placed, dask_cluster):
    """`cluster up` starts the Dask dashboard (bokeh is installed with the test extras); runs link it."""
    import urllib.request

    from workbench.cluster.daskcluster import cluster_status, read_state
    from workbench.jobs.grep import GrepJob

    link = read_state(dask_cluster)["dashboard"]
    assert link and link.startswith("http://") and link.endswith("/status")
    with urllib.request.urlopen(link, timeout=30) as page:  # the coordinator's own testbed address
        assert page.status == 200 and b"Dask" in page.read()
    assert {row["dashboard"] for row in cluster_status(dask_cluster)} == {link}
    from workbench.backends import release

    run = placed.run(GrepJob(pattern="C", fixed=True, count_only=True), backend="dask", cluster=str(dask_cluster))
    try:
        assert run.dashboard_link == link
    finally:
        release(run.backend)  # its client would outlive the cluster's scheduler


def test_cluster_down_stops_everything(dask_cluster):
    """Runs last in this module: stops the session's cluster and checks nothing is left."""
    from workbench.backends import close_all
    from workbench.cluster.daskcluster import read_state, scheduler_address, state_path
    from workbench.cluster.processes import pid_alive
    from workbench.cluster.tls import tls_dir

    close_all()  # this process's clients of the cluster
    state = read_state(dask_cluster)
    pids = [state["scheduler_pid"], *(n["pid"] for n in state["nodes"].values())]  # nodes share this kernel
    proc = subprocess.run([sys.executable, "-m", "workbench", "cluster", "down", "--cluster", str(dask_cluster)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert not [p for p in pids if pid_alive(p)]
    assert not _processes_mentioning(state["scheduler"])
    assert not state_path(dask_cluster).exists()
    assert not tls_dir(dask_cluster).exists()  # this run's keys and certificates went with it
    with pytest.raises(ClusterError, match="cluster is not up; run `workbench cluster up --cluster"):
        scheduler_address(str(dask_cluster))


def _processes_mentioning(text: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]
