"""End to end: searches through the index equal RDKit on the queries its pattern fingerprint gets
wrong, on records with query features, on huge queries; the panel without an index too."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.chem.conftest import HAND_SMARTS, indexed_copy, rdkit_panel, read_records, substructure_truth
from tests.chem.test_screen import EDGE_SMILES

PANEL = HAND_SMARTS + rdkit_panel()
FINGERPRINT_TRAPS = ["[R0;C]", "[X4;#7]", "[v6;S]", "[X4;#7]C", "[R0;C]-[R0;C]=O", "[v6;S](=O)(=O)N", "[D3;C](C)(C)C"]


def rows(table) -> list[tuple[int, str]]:
    return sorted(zip(table["cid"].to_pylist(), table["smiles"].to_pylist()))


@pytest.fixture(scope="module")
def edge_dataset(tmp_path_factory, nci_smi):
    """NCI molecules and the edge records (``C~C``, isotopes, charges, dummies), indexed."""
    import workbench as wb

    tmp = tmp_path_factory.mktemp("edge")
    nci = [line.split()[0] for line in nci_smi.read_text().splitlines()[:1500]]
    lines = [f"{i}\t{s}" for i, s in enumerate(EDGE_SMILES + nci, 1)]
    (tmp / "edge.tsv").write_text("\n".join(lines) + "\n")
    plain = wb.ingest([tmp / "edge.tsv"], tmp / "plain", shard_size="16kB", format="cid-smiles")
    return plain, indexed_copy(plain.directory, tmp / "indexed")


@pytest.fixture(scope="module")
def edge_records(edge_dataset):
    return read_records(edge_dataset[0].directory)


@pytest.mark.parametrize("query", FINGERPRINT_TRAPS)
def test_queries_the_pattern_fingerprint_cannot_screen(nci_indexed, nci_records, moses_indexed, moses_records, query):
    assert rows(nci_indexed.substructure(query)) == substructure_truth(nci_records, query)
    assert rows(moses_indexed.substructure(query)) == substructure_truth(moses_records, query)


@pytest.mark.parametrize("query, smiles", [("CC", True), ("C~C", False), ("CC", False), ("CO", True), ("C-C", False),
                                           ("[13CH3]", False), ("C[N+](C)(C)C", True), ("*C", True)])
def test_records_with_query_bonds_are_found(edge_dataset, edge_records, query, smiles):
    plain, indexed = edge_dataset
    truth = substructure_truth(edge_records, query, smiles=smiles)
    assert rows(indexed.substructure(query, smiles=smiles)) == truth
    assert rows(plain.substructure(query, smiles=smiles)) == truth
    if query == "CC" and smiles:
        assert (1, "C~C") in truth  # RDKit reads the record's query bond and matches it


def test_huge_smarts_is_answered_and_keeps_the_workers(edge_dataset, edge_records):
    """A valid 100,000-atom SMARTS: RDKit's answer (no match), then the same pool answers again."""
    from workbench.backends import get_backend

    _, indexed = edge_dataset
    assert indexed.substructure("C" * 100_000, workers=2).num_rows == 0
    client = get_backend("local", workers=2).client()
    assert rows(indexed.substructure("c1ccccc1", workers=2)) == substructure_truth(edge_records, "c1ccccc1")
    assert get_backend("local", workers=2).client() is client


def test_huge_smarts_on_the_command_line_exits_1(edge_dataset):
    _, indexed = edge_dataset
    proc = subprocess.run([sys.executable, "-m", "workbench", "substructure", "C" * 100_000, "-d",
                           str(indexed.directory)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr and "KilledWorker" not in proc.stderr


@pytest.mark.parametrize("query", PANEL)
def test_panel_without_an_index(nci_dataset, nci_records, query):
    assert rows(nci_dataset.substructure(query)) == substructure_truth(nci_records, query)
