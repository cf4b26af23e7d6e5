"""``workbench index / substructure / similar``: output lines, exit status, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.chem.conftest import similarity_truth, substructure_truth
from workbench.cli import main

BIN = Path(sys.executable).parent


def cli(capfdbinary, *args: str) -> tuple[int, bytes, str]:
    code = main(list(args))
    out, err = capfdbinary.readouterr()
    return code, out, err.decode()


def test_substructure_prints_cid_smiles_lines(nci_indexed, nci_records, capfdbinary):
    code, out, _ = cli(capfdbinary, "substructure", "c1ccncc1", "--dataset", str(nci_indexed.directory))
    truth = substructure_truth(nci_records, "c1ccncc1")
    assert code == 0
    assert sorted(out.splitlines()) == sorted(f"{c}\t{s}".encode() for c, s in truth)


def test_count_limit_and_smiles_flag(nci_indexed, nci_records, capfdbinary):
    ds = str(nci_indexed.directory)
    assert cli(capfdbinary, "substructure", "C(=O)O", "--smiles", "-c", "-d", ds)[:2] == \
        (0, f"{len(substructure_truth(nci_records, 'C(=O)O', smiles=True))}\n".encode())
    code, out, _ = cli(capfdbinary, "substructure", "[#7]", "--limit", "5", "-d", ds)
    assert code == 0 and out.splitlines() == [f"{c}\t{s}".encode() for c, s in substructure_truth(nci_records, "[#7]")[:5]]


def test_no_match_exits_1(nci_indexed, capfdbinary):
    assert cli(capfdbinary, "substructure", "[U]", "-d", str(nci_indexed.directory))[:2] == (1, b"")
    assert cli(capfdbinary, "substructure", "[U]", "-c", "-d", str(nci_indexed.directory))[:2] == (1, b"0\n")


def test_similar_sorted_with_scores(nci_indexed, nci_records, capfdbinary, tmp_path):
    out_file = tmp_path / "hits.parquet"
    code, out, _ = cli(capfdbinary, "similar", "CC(=O)Nc1ccc(O)cc1", "-d", str(nci_indexed.directory),
                       "--threshold", "0.2", "--top", "7", "-o", str(out_file), "--stats-json", str(tmp_path / "s.json"))
    truth = similarity_truth(nci_records, "CC(=O)Nc1ccc(O)cc1", 0.2)[:7]
    assert code == 0
    assert [tuple(line.split(b"\t")) for line in out.splitlines()] == \
        [(str(c).encode(), s.encode(), repr(sim).encode()) for c, s, sim in truth]
    import pyarrow.parquet as pq

    assert pq.read_table(out_file)["cid"].to_pylist() == [c for c, _, _ in truth]
    assert json.loads((tmp_path / "s.json").read_text())["shards_done"] == len(nci_indexed.manifest.shards)


def test_index_command_reports_and_reuses(tmp_path, unparsable_dataset, capfdbinary):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(unparsable_dataset.directory, ds)
    code, _, err = cli(capfdbinary, "index", "-d", str(ds), "--stats")
    assert code == 0
    assert f"({len(json.loads((ds / 'manifest.json').read_text())['shards'])} built, 0 up to date)" in err
    assert "RDKit cannot parse (listed in" in err and "index/invalid.tsv" in err
    code, _, err = cli(capfdbinary, "index", "-d", str(ds))
    assert code == 0 and "(0 built," in err


@pytest.mark.parametrize("args, message", [
    (["substructure", "C("], "error: invalid SMARTS 'C(': RDKit cannot parse it\n"),
    (["substructure", "c1cccc1", "--smiles"], "error: invalid SMILES 'c1cccc1': RDKit cannot parse it\n"),
    (["similar", "C1CC"], "error: invalid SMILES 'C1CC': RDKit cannot parse it\n"),
])
def test_invalid_query_is_one_error_line_exit_2(nci_indexed, args, message):
    proc = subprocess.run([str(BIN / "workbench"), *args, "--dataset", str(nci_indexed.directory)],
                          capture_output=True, text=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (2, "", message)


def test_incompatible_index_is_one_error_line(tmp_path, nci_indexed):
    import shutil

    ds = tmp_path / "ds"
    shutil.copytree(nci_indexed.directory, ds)
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest["index"]["rdkit"] = "2019.03.1"
    (ds / "manifest.json").write_text(json.dumps(manifest))
    proc = subprocess.run([str(BIN / "workbench"), "similar", "CCO", "--dataset", str(ds)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: cannot use the chemistry index: the index was built with RDKit 2019.03.1")
    assert proc.stderr.rstrip().endswith("re-run `workbench index` to rebuild it")
