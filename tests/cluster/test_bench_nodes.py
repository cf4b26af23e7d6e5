"""``bench scaling --cluster FILE --nodes …``: 1..N testbed nodes, local placement against shared storage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.helpers import gnu_grep, rendered_report, shard_files

pytestmark = [pytest.mark.ssh, pytest.mark.slow]


def test_node_scaling_local_and_shared_warm_and_cold(testbed, nci_smi, tmp_path):
    import workbench as wb
    from workbench.cluster.inventory import load_cluster

    # its own name: the node-side copies (one per node) must not mix with the session's `placed` dataset
    ds = wb.ingest([nci_smi], tmp_path / "nci-node-scaling", shard_size="32kB")
    shared = load_cluster(testbed).nodes[0].shared_dir
    shutil.copytree(ds.directory, f"{shared}/{ds.directory.name}")  # what an NFS export would hold
    out = tmp_path / "nodes.json"
    from workbench.cluster.daskcluster import is_up

    was_up = is_up(testbed)
    proc = subprocess.run([sys.executable, "-m", "workbench", "bench", "scaling", "-d", str(ds.directory), "-q", "C(=O)N",
                           "-F", "--cluster", str(testbed), "--nodes", "1,2", "--storage", "local,shared", "--repeat", "1",
                           "--cold", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    for header in ("storage", "nodes", "MB/s per node", "busiest node", "cache"):
        assert header in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["kind"] == "nodes" and [n["name"] for n in doc["cluster"]] == ["node1", "node2", "node3"]
    assert sorted(doc["health_end"]) == ["node1", "node2", "node3"]
    rows = [(r["storage"], r["nodes"], r["cache"]) for r in doc["rows"]]
    assert rows == [(s, k, c) for s in ("local", "shared") for k in (1, 2) for c in ("warm", "cold")]
    hits = len(gnu_grep(shard_files(ds.directory), "-F", "-e", "C(=O)N"))
    assert {r["hits"] for r in doc["runs"]} == {hits}
    for run in doc["runs"]:
        ran_on = {s["node"] for s in run["shards"]}
        assert ran_on <= set(run["node_names"]) and len(run["shards"]) == len(ds.manifest.shards)
        if run["nodes"] == 1:
            assert ran_on == {"node1"}
        if run["cache"] == "cold":
            assert run["resident"] == 0.0
    one = next(r for r in doc["rows"] if r["nodes"] == 1)
    assert one["busiest_share"] == 1.0 and list(one["node_mb_per_s"]) == ["node1"]
    assert one["mb_per_s_node"] == pytest.approx(one["mb_per_s"])
    ds.reload()
    assert ds.manifest.placement is None  # the dataset's own placement is restored
    assert is_up(testbed) == was_up  # a cluster the bench started is stopped again

    dom, (chart,) = rendered_report([out], tmp_path)
    for label in ("nodes", "MB/s", "MB/s per node", "local warm", "shared cold"):
        assert f">{label}<" in chart
    assert "<td>node2</td>" in dom and "cluster nodes" in dom

