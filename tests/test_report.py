"""``bench scaling --cold`` and ``bench report``: cache states recorded per run, a self-contained page
that a real browser renders with its charts."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import gnu_grep, rendered_report, shard_files

WB = [sys.executable, "-m", "workbench"]


@pytest.fixture(scope="module")
def cold_scaling(nci_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("cold") / "scaling.json"
    proc = subprocess.run([*WB, "bench", "scaling", "--dataset", str(nci_dataset.directory), "-q", "C(=O)N", "-F",
                           "--workers", "1,2", "--repeat", "2", "--cold", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout


def test_cold_runs_start_with_the_dataset_out_of_the_page_cache(cold_scaling, nci_dataset):
    path, table = cold_scaling
    for header in ("warm s", "warm MB/s", "cold s", "cold MB/s", "cold ÷ warm", "cached at cold start"):
        assert header in table
    doc = json.loads(path.read_text())
    assert doc["kind"] == "scaling" and doc["cold"] is True
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["versions"]["workbench"]
    runs = doc["runs"]
    assert sorted((r["workers"], r["cache"]) for r in runs) == [(1, "cold")] * 2 + [(1, "warm")] * 2 + \
        [(2, "cold")] * 2 + [(2, "warm")] * 2
    # mincore's word against fincore's (util-linux): a cold run found none of the dataset cached,
    # a warm one all of it (the warm-up had just read it)
    assert all(r["resident"] == 0.0 for r in runs if r["cache"] == "cold")
    assert all(r["resident"] == 1.0 for r in runs if r["cache"] == "warm")
    hits = len(gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "C(=O)N"))
    assert {r["hits"] for r in runs} == {hits}
    assert [(r["workers"], r["cache"]) for r in doc["rows"]] == [(1, "warm"), (1, "cold"), (2, "warm"), (2, "cold")]


def test_drop_and_resident_agree_with_fincore(nci_dataset):
    import shutil

    from workbench.util import pagecache

    fincore = shutil.which("fincore")
    if fincore is None:
        pytest.skip("fincore (util-linux) is not installed")
    files = [str(p) for p in shard_files(nci_dataset.directory)]

    def fincore_bytes() -> int:
        out = subprocess.run([fincore, "-b", "-n", "-o", "RES", *files], capture_output=True, text=True, check=True)
        return sum(int(x) for x in out.stdout.split())

    for path in files:
        with open(path, "rb") as fh:
            fh.read()
    cached, total = pagecache.resident(files)
    assert cached == total == sum(len(open(p, "rb").read()) for p in files)
    assert fincore_bytes() >= total  # fincore counts whole pages
    pagecache.drop(files)
    assert pagecache.resident(files) == (0, total) and fincore_bytes() == 0


def test_report_is_self_contained_and_renders_its_charts(cold_scaling, tmp_path):
    path, _ = cold_scaling
    dom, charts = rendered_report([path, path], tmp_path, "--title", "Cold and warm")
    assert "<title>Cold and warm</title>" in dom
    for chart in charts:
        assert chart.count("<path") > 10
        for label in ("workers", "speedup", "MB/s", "warm", "cold"):
            assert f">{label}<" in chart
    from workbench.bench.machine import cpu_model

    assert f"<td>{html.escape(cpu_model())}</td>" in dom
    assert "<td>rdkit</td>" in dom and "<td>dask</td>" in dom
    import matplotlib.image

    pixels = matplotlib.image.imread(tmp_path / "report.png")[..., :3]
    assert (pixels.min(axis=2) < 0.9).mean() > 0.02  # real drawing on the page, not a blank screen


def test_report_rejects_what_is_not_a_benchmark(tmp_path):
    (tmp_path / "x.json").write_text('{"records": 3}')
    proc = subprocess.run([*WB, "bench", "report", str(tmp_path / "x.json"), "-o", str(tmp_path / "r.html")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"error: {tmp_path / 'x.json'}: not a benchmark result")
    assert not (tmp_path / "r.html").exists()
    proc = subprocess.run([*WB, "bench", "report", str(tmp_path / "absent.json"), "-o", str(tmp_path / "r.html")],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (2, f"error: {tmp_path / 'absent.json'}: no such file\n")


def test_version_and_grouped_help():
    import workbench

    proc = subprocess.run([*WB, "--version"], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (0, f"workbench {workbench.__version__}\n")
    out = subprocess.run([*WB, "--help"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "100"}).stdout
    panels = [m for m in re.findall(r"─ (\w+) ─", out)]
    assert panels == ["Options", "Data", "Search", "Chemistry", "Containers", "Cluster", "Benchmarks"]
    commands = re.findall(r"^│ (\w+) ", out, flags=re.M)
    order = ["datasets", "ingest", "info", "verify", "grep", "run", "index", "substructure", "similar", "images",
             "nodes", "place", "cluster", "testbed", "bench"]
    assert commands == order  # every command in a panel, in the order of the work
