"""What a notebook sees without a kernel: HTML tables of a dataset and a run, node health in stats, no
dashboard for thread jobs."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import gnu_grep, shard_files
from workbench.jobs.grep import GrepJob


def test_dataset_renders_as_html_tables(nci_dataset):
    page = nci_dataset._repr_html_()
    assert page.count("<table") == 2
    assert ">4,999<" in page and f">{len(nci_dataset.manifest.shards)} shards<" in page
    for shard in nci_dataset.manifest.shards:  # few shards: every one is listed
        assert f"<td>{shard.name}</td>" in page


def test_run_stats_render_as_html_tables(nci_dataset):
    run = nci_dataset.run(GrepJob(pattern="C(=O)N", fixed=True), workers=2)
    table = run.table()
    hits = len(gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "C(=O)N"))
    assert table.num_rows == hits
    page = run._repr_html_()
    assert page == run.stats._repr_html_() and page.count("<table") == 2
    assert f">{hits:,}<" in page and "per node" in page
    assert run.dashboard_link is None  # grep runs on threads: no Dask cluster, no dashboard


def test_stats_json_records_this_machines_health_at_start_and_end(nci_dataset, tmp_path):
    from workbench.jobs.base import node_name

    stats = tmp_path / "stats.json"
    proc = subprocess.run([sys.executable, "-m", "workbench", "grep", "-cF", "C(=O)N", "-d", str(nci_dataset.directory),
                           "--stats-json", str(stats)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    nodes = json.loads(stats.read_text())["nodes"]
    assert list(nodes) == [node_name()]
    for moment in ("start", "end"):
        health = nodes[node_name()][moment]
        assert len(health["load"]) == 3 and health["memory_available"] > 0
        assert "temperature" in health and "throttle" in health


def test_cluster_calls_work_where_an_event_loop_runs():
    """A Jupyter cell runs inside the kernel's event loop: the cluster layer's SSH fan-out must still work."""
    import asyncio

    from workbench.cluster.ssh import bounded, run_sync

    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    async def cell() -> list:
        asyncio.get_running_loop()  # as in a notebook: a loop is running in this thread
        return run_sync(bounded([1, 2, 3], double, 2))

    assert asyncio.run(cell()) == [2, 4, 6]
    assert run_sync(bounded([4], double, 1)) == [8]
