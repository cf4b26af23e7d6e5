"""Dataset recipes, ``bench scaling``, and the notebook API's streaming form."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import workbench as wb
from tests.helpers import gnu_grep, require, shard_files
from workbench.errors import DatasetError, QueryError

WB = [sys.executable, "-m", "workbench"]


def test_datasets_list_names_every_recipe():
    proc = subprocess.run([*WB, "datasets", "list"], capture_output=True, text=True)
    assert proc.returncode == 0
    for name in ("nci-5k", "moses", "pubchem"):
        assert name in proc.stdout


def test_fetch_nci(tmp_path, nci_smi):
    proc = subprocess.run([*WB, "datasets", "fetch", "nci-5k", "--dataset", str(tmp_path / "d")], capture_output=True, text=True)
    assert proc.returncode == 0 and "4,999 records" in proc.stderr
    assert wb.open_dataset(tmp_path / "d").manifest.records == len(nci_smi.read_text().splitlines())


def test_fetch_pubchem_without_internet_is_a_clear_error(tmp_path):
    env = {**os.environ, "WORKBENCH_PUBCHEM_URL": "http://127.0.0.1:9/CID-SMILES.gz"}
    proc = subprocess.run([*WB, "datasets", "fetch", "pubchem", "--dataset", str(tmp_path / "d")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: cannot download http://127.0.0.1:9/CID-SMILES.gz")
    assert not (tmp_path / "d").exists()


def test_moses_lines_from_the_molsets_wheel():
    from workbench.storage.recipes import moses_cid_smiles

    try:
        lines = list(moses_cid_smiles(limit=2000))
    except wb.WorkbenchError as exc:  # needs PyPI once (the wheel is cached)
        require("moses", False, f"molsets wheel not available: {exc}")
    assert len(lines) == 2000 and lines[0].startswith(b"1\t") and lines[-1].startswith(b"2000\t")
    from rdkit import Chem

    assert all(Chem.MolFromSmiles(ln.split(b"\t")[1].decode()) is not None for ln in lines[:200])


def test_unknown_recipe(tmp_path):
    proc = subprocess.run([*WB, "datasets", "fetch", "chembl", "--dataset", str(tmp_path / "d")], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (2, "error: unknown dataset recipe 'chembl' (known: nci-5k, moses, pubchem)\n")


def test_bench_scaling_table_json_and_plot(nci_dataset, tmp_path):
    proc = subprocess.run([*WB, "bench", "scaling", "--dataset", str(nci_dataset.directory), "--job", "grep",
                           "--query", "C(=O)N", "-F", "--workers", "1,2", "--repeat", "2",
                           "--json", str(tmp_path / "s.json"), "--plot", str(tmp_path / "s.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for header in ("workers", "wall s", "MB/s", "records/s", "speedup", "effic.", "CPU s"):
        assert header in proc.stdout
    data = json.loads((tmp_path / "s.json").read_text())
    assert [r["workers"] for r in data["rows"]] == [1, 2]
    assert len(data["runs"]) == 4 and {r["workers"] for r in data["runs"]} == {1, 2}
    hits = len(gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "C(=O)N"))
    assert all(r["hits"] == hits for r in data["runs"])
    assert data["rows"][0]["speedup"] == 1.0 and data["rows"][1]["wall_s"] > 0
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_scaling_rejects_bad_worker_list(nci_dataset):
    proc = subprocess.run([*WB, "bench", "scaling", "--dataset", str(nci_dataset.directory), "--query", "C",
                           "--workers", "1,two"], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (2, "error: --workers must be a comma-separated list of integers, not '1,two'\n")


def test_api_streams_one_batch_per_shard(nci_dataset):
    batches = list(nci_dataset.grep_batches("C(=O)N", fixed=True, workers=2))
    assert len(batches) == len(nci_dataset.manifest.shards)
    got = sorted(f"{c}\t{s}".encode() for b in batches for c, s in zip(b["cid"].to_pylist(), b["smiles"].to_pylist()))
    assert got == gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "C(=O)N")


def test_api_errors_are_typed(tmp_path, nci_dataset):
    with pytest.raises(DatasetError, match="is not a dataset"):
        wb.open_dataset(tmp_path)
    with pytest.raises(QueryError, match=r"invalid pattern .\[.: grep: "):
        nci_dataset.grep("[", workers=1)
    assert "records=4,999" in repr(nci_dataset)


def test_fetch_moses_end_to_end(tmp_path):
    """Every SMILES of the molsets wheel's CSVs, read here independently, CIDs 1..N."""
    import csv
    import gzip
    import io
    import zipfile

    from workbench.storage.recipes import molsets_wheel

    try:
        wheel = molsets_wheel()
    except wb.WorkbenchError as exc:  # needs PyPI once (the wheel is cached)
        require("moses", False, f"molsets wheel not available: {exc}")
    expected = 0
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("moses/dataset/data/") and name.endswith(".csv.gz"):
                rows = csv.reader(io.TextIOWrapper(gzip.open(zf.open(name)), encoding="ascii"))
                next(rows)
                expected += sum(1 for row in rows if row and row[0])
    proc = subprocess.run([*WB, "datasets", "fetch", "moses", "--dataset", str(tmp_path / "m")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ds = wb.open_dataset(tmp_path / "m")
    assert ds.manifest.records == expected > 1_900_000 and ds.manifest.rejected == 0
    assert ds.manifest.sources == ["molsets==0.3.1"]
    assert ds.manifest.shards[0].first_cid == 1 and ds.manifest.shards[-1].last_cid == expected


def test_fetch_pubchem_streams_from_a_mirror(tmp_path, nci_smi):
    """The pubchem recipe against a loopback HTTP mirror of a small CID-SMILES.gz."""
    import gzip
    import http.server
    import threading
    from functools import partial

    lines = [f"{cid}\t{smi}" for smi, cid in (ln.split() for ln in nci_smi.read_text().splitlines())]
    (tmp_path / "CID-SMILES.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/CID-SMILES.gz"
        proc = subprocess.run([*WB, "datasets", "fetch", "pubchem", "--dataset", str(tmp_path / "p"), "--shard-size", "50kB"],
                              capture_output=True, text=True, env={**os.environ, "WORKBENCH_PUBCHEM_URL": url})
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    ds = wb.open_dataset(tmp_path / "p")
    assert b"".join(p.read_bytes() for p in shard_files(ds.directory)).decode().splitlines() == lines
    assert ds.manifest.sources == [url] and len(ds.manifest.shards) == 4
