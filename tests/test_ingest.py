"""Ingest: every format, stdin, gzip, rejects, atomicity, shard invariants."""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import workbench as wb
from tests.helpers import shard_files
from workbench.errors import IngestError

WB = [sys.executable, "-m", "workbench"]

GOOD = [b"1\tCCO", b"2\tc1ccccc1", b"5\tC(=O)N[nH]", b"11\tC\\C=C/C", b"12\t[N+](=O)[O-]"]
BAD = {  # line -> expected reason fragment
    b"": "blank line",
    b"cid\tsmiles": "not a positive decimal integer",
    b"# a comment": "no TAB",
    b"7\tCC\xff\xfeO": "not valid UTF-8",
    b"-5\tCC": "not a positive decimal integer",
    b"12.5\tCC": "not a positive decimal integer",
    b"0x1F\tCC": "not a positive decimal integer",
    b"0\tCC": "zero or leading zero",
    b"9\t": "empty SMILES",
    b"10\tC C": "whitespace",
    b"13\tCC\tmore": "whitespace",
    b"14": "no TAB",
}


def run_cli(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*WB, *args], input=input, capture_output=True)


def all_lines(dataset_dir: Path) -> list[bytes]:
    return b"".join(p.read_bytes() for p in shard_files(dataset_dir)).splitlines()


def test_cid_smiles_with_rejects(tmp_path):
    lines = [GOOD[0], *BAD, GOOD[1], b"3\tCCN\r", GOOD[2], GOOD[3], GOOD[4]]
    src = tmp_path / "in.tsv"
    src.write_bytes(b"\n".join(lines) + b"\n")
    ds = wb.ingest([src], tmp_path / "ds", shard_size="1kB")
    assert all_lines(ds.directory) == [GOOD[0], GOOD[1], b"3\tCCN", GOOD[2], GOOD[3], GOOD[4]]
    assert ds.manifest.records == 6 and ds.manifest.rejected == len(BAD)
    rows = (ds.directory / "rejects.tsv").read_text().splitlines()
    assert rows[0] == "source\tline\treason\ttext"
    by_line = {int(r.split("\t")[1]): r.split("\t")[2] for r in rows[1:]}
    for number, (line, reason) in enumerate(BAD.items(), start=2):
        assert reason in by_line[number], (line, by_line[number])


def test_gzip_and_stdin_give_the_same_shards(tmp_path, nci_smi):
    cid_smiles = b"".join(f"{i}\t{s}\n".encode() for i, s in enumerate(_smiles(nci_smi), 1))
    (tmp_path / "a.tsv.gz").write_bytes(gzip.compress(cid_smiles))
    plain = wb.ingest([_write(tmp_path / "a.tsv", cid_smiles)], tmp_path / "plain", shard_size="20kB")
    gz = wb.ingest([tmp_path / "a.tsv.gz"], tmp_path / "gz", shard_size="20kB")
    proc = run_cli("ingest", "-", "--dataset", str(tmp_path / "stdin"), "--shard-size", "20kB", input=cid_smiles)
    assert proc.returncode == 0, proc.stderr
    assert b"4,999 records" in proc.stderr
    stdin = wb.open_dataset(tmp_path / "stdin")
    assert [s.sha256 for s in plain.manifest.shards] == [s.sha256 for s in gz.manifest.shards] == [
        s.sha256 for s in stdin.manifest.shards]
    assert b"".join(all_lines(plain.directory)) == b"".join(cid_smiles.splitlines())


def test_shard_invariants(nci_dataset):
    m = nci_dataset.manifest
    assert m.records == 4999 and m.rejected == 0 and len(m.shards) > 3
    for shard in m.shards:
        data = (nci_dataset.directory / shard.path).read_bytes()
        assert len(data) == shard.bytes <= m.shard_size
        assert data.endswith(b"\n") and data.count(b"\n") == shard.records
        assert hashlib.sha256(data).hexdigest() == shard.sha256
        lines = data.splitlines()
        assert int(lines[0].split(b"\t")[0]) == shard.first_cid and int(lines[-1].split(b"\t")[0]) == shard.last_cid
    on_disk = json.loads((nci_dataset.directory / "manifest.json").read_text())
    assert {"path", "records", "bytes", "sha256", "first_cid", "last_cid"} <= set(on_disk["shards"][0])
    assert on_disk["version"] == 1 and on_disk["rejected"] == 0 and on_disk["records"] == 4999


def test_smi_matches_source_order(nci_dataset, nci_smi):
    expected = [f"{cid}\t{smi}".encode() for smi, cid in (line.split() for line in nci_smi.read_text().splitlines())]
    assert all_lines(nci_dataset.directory) == expected


def test_long_smiles_line_is_valid(tmp_path):
    long = b"C" * 60_000
    ds = wb.ingest([_write(tmp_path / "x.tsv", b"1\tCC\n2\t" + long + b"\n3\tN\n")], tmp_path / "ds", shard_size="16kB")
    assert ds.manifest.rejected == 0 and ds.manifest.records == 3
    assert [s.records for s in ds.manifest.shards] == [1, 1, 1]  # an over-long line gets a shard of its own
    assert all_lines(ds.directory)[1] == b"2\t" + long


def test_sdf_fields_title_and_rdkit_fallback(tmp_path, rdkit_data):
    from rdkit import Chem

    mols = [m for m in Chem.SDMolSupplier(str(rdkit_data / "NCI" / "first_200.props.sdf")) if m is not None][:30]
    sdf = tmp_path / "Compound_000000001_000500000.sdf"
    writer = Chem.SDWriter(str(sdf))
    expected = []
    for i, mol in enumerate(mols, start=100):
        mol = Chem.Mol(mol)
        for name in list(mol.GetPropNames()):
            mol.ClearProp(name)
        if i % 3 == 0:  # PubChem style: CID and SMILES fields
            mol.SetProp("PUBCHEM_COMPOUND_CID", str(i))
            mol.SetProp("PUBCHEM_SMILES", Chem.MolToSmiles(mol))
            mol.SetProp("_Name", "")
            expected.append(f"{i}\t{Chem.MolToSmiles(mol)}".encode())
        else:  # CID only in the title: SMILES computed by RDKit from the molblock
            mol.SetProp("_Name", str(i))
            expected.append(f"{i}\t{Chem.MolToSmiles(Chem.MolFromMolBlock(Chem.MolToMolBlock(mol)))}".encode())
        writer.write(mol)
    writer.close()
    with open(sdf, "ab") as fh:  # a record with no CID anywhere is rejected, not dropped
        name = mols[0].GetProp("_Name") if mols[0].HasProp("_Name") else ""
        fh.write(Chem.MolToMolBlock(mols[0]).replace(name, "no-id", 1).encode() + b"$$$$\n")
    gz = tmp_path / (sdf.name + ".gz")
    gz.write_bytes(gzip.compress(sdf.read_bytes()))
    ds = wb.ingest([gz], tmp_path / "ds")
    assert all_lines(ds.directory) == expected
    assert ds.manifest.rejected == 1
    assert "no PubChem CID" in (ds.directory / "rejects.tsv").read_text()


def test_truncated_gzip_fails_cleanly(tmp_path, nci_smi):
    data = gzip.compress(nci_smi.read_bytes())
    bad = _write(tmp_path / "cut.smi.gz", data[: len(data) // 2])
    proc = run_cli("ingest", str(bad), "--dataset", str(tmp_path / "ds"))
    assert proc.returncode == 2
    err = proc.stderr.decode()
    assert err.startswith("error: ") and "truncated" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.smi.gz"]  # no dataset, no temporary left


def test_existing_dataset_needs_force(tmp_path, nci_smi):
    wb.ingest([nci_smi], tmp_path / "ds")
    proc = run_cli("ingest", str(nci_smi), "--dataset", str(tmp_path / "ds"))
    assert proc.returncode == 2 and b"already exists" in proc.stderr
    proc = run_cli("ingest", str(nci_smi), "--dataset", str(tmp_path / "ds"), "--force", "--shard-size", "50kB")
    assert proc.returncode == 0 and len(wb.open_dataset(tmp_path / "ds").manifest.shards) == 4


def test_missing_source_and_bad_size(tmp_path):
    with pytest.raises(IngestError, match="does not exist"):
        wb.ingest([tmp_path / "nope.tsv"], tmp_path / "ds")
    proc = run_cli("ingest", "x", "--dataset", str(tmp_path / "ds"), "--shard-size", "lots")
    assert proc.returncode == 2 and proc.stderr == b"error: invalid size 'lots' (examples: 64MB, 512kB, 1GiB)\n"
    assert not (tmp_path / "ds").exists()


def test_info(nci_dataset):
    proc = run_cli("info", "--dataset", str(nci_dataset.directory), "--json")
    facts = json.loads(proc.stdout)
    assert facts["records"] == 4999 and facts["shards"] == len(nci_dataset.manifest.shards)
    assert facts["rejected"] == 0 and facts["index"] == "none"
    text = run_cli("info", "--dataset", str(nci_dataset.directory)).stdout.decode()
    assert "4,999" in text and "index" in text


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _smiles(smi: Path) -> list[str]:
    return [line.split()[0] for line in smi.read_text().splitlines()]
