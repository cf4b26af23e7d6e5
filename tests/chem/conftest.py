"""Chemistry fixtures: indexed copies of real datasets and RDKit ground truth, record by record."""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import require, shard_files

#: SMILES RDKit rejects (ring not closed, cannot kekulize, bad valence, syntax); mixed into a dataset.
UNPARSABLE = ["C1CC", "c1cccc1", "C(C)(C)(C)(C)C", "CC(", "N1=CC=CC=C1=O", "[Zz]"]


@dataclass
class Record:
    cid: int
    smiles: str
    mol: object  # rdkit Mol, or None when RDKit cannot parse the SMILES


def read_records(dataset_dir: Path) -> list[Record]:
    """Every shard line of a dataset, parsed independently with ``Chem.MolFromSmiles``."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    out = []
    for path in shard_files(dataset_dir):
        for line in path.read_text().splitlines():
            cid, smi = line.split("\t", 1)
            out.append(Record(int(cid), smi, Chem.MolFromSmiles(smi)))
    return out


def substructure_truth(records: list[Record], query: str, smiles: bool = False) -> list[tuple[int, str]]:
    """(cid, smiles) of every record whose molecule ``HasSubstructMatch(query)``, RDKit defaults."""
    from rdkit import Chem

    q = Chem.MolFromSmiles(query) if smiles else Chem.MolFromSmarts(query)
    assert q is not None, query
    return sorted((r.cid, r.smiles) for r in records if r.mol is not None and r.mol.HasSubstructMatch(q))


def similarity_truth(records: list[Record], smiles: str, threshold: float) -> list[tuple[int, str, float]]:
    """``BulkTanimotoSimilarity`` on Morgan r=2 2048-bit fingerprints, best first (ties by CID)."""
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    valid = [r for r in records if r.mol is not None]
    sims = DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(Chem.MolFromSmiles(smiles)),
                                              [gen.GetFingerprint(r.mol) for r in valid])
    rows = [(r.cid, r.smiles, s) for r, s in zip(valid, sims) if s >= threshold]
    return sorted(rows, key=lambda row: (-row[2], row[0]))


def indexed_copy(source: Path, target: Path, workers: int = 2):
    import workbench as wb

    shutil.copytree(source, target)
    ds = wb.open_dataset(target)
    ds.build_index(workers=workers)
    return ds


@pytest.fixture(scope="session")
def nci_records(nci_dataset) -> list[Record]:
    return read_records(nci_dataset.directory)


@pytest.fixture(scope="session")
def nci_indexed(tmp_path_factory, nci_dataset):
    """An indexed copy of the NCI dataset (read-only for tests)."""
    return indexed_copy(nci_dataset.directory, tmp_path_factory.mktemp("nci-indexed") / "ds")


@pytest.fixture(scope="session")
def unparsable_dataset(tmp_path_factory, nci_smi):
    """NCI molecules with SMILES RDKit rejects mixed in, ingested as CID-SMILES, not indexed."""
    import workbench as wb

    tmp = tmp_path_factory.mktemp("unparsable")
    lines = []
    for i, line in enumerate(nci_smi.read_text().splitlines()[:600]):
        lines.append(f"{10_000 + i}\t{line.split()[0]}")
        if i % 100 == 7:
            lines.append(f"{90_000 + i}\t{UNPARSABLE[(i // 100) % len(UNPARSABLE)]}")
    src = tmp / "mixed.tsv"
    src.write_text("\n".join(lines) + "\n")
    return wb.ingest([src], tmp / "ds", shard_size="8kB", format="cid-smiles")


@pytest.fixture(scope="session")
def moses_indexed(tmp_path_factory):
    """3,000 MOSES molecules (CIDs 1…), ingested and indexed."""
    import workbench as wb
    from workbench.errors import WorkbenchError
    from workbench.storage.recipes import moses_cid_smiles

    try:
        lines = list(moses_cid_smiles(limit=3000))
    except WorkbenchError as exc:
        lines = []
        require("moses", False, str(exc))
    tmp = tmp_path_factory.mktemp("moses")
    (tmp / "moses.tsv").write_bytes(b"".join(lines))
    ds = wb.ingest([tmp / "moses.tsv"], tmp / "ds", shard_size="24kB", format="cid-smiles")
    ds.build_index(workers=2)
    return ds


@pytest.fixture(scope="session")
def moses_records(moses_indexed) -> list[Record]:
    return read_records(moses_indexed.directory)


def rdkit_panel(every_rlewis: int = 10, every_pains: int = 20) -> list[str]:
    """SMARTS from RDKit's RLewis_smarts.txt and the PAINS set shipped with RDKit (a sample)."""
    from rdkit import RDConfig

    data = Path(RDConfig.RDDataDir)
    rlewis = [line.split()[0] for line in (data / "SmartsLib" / "RLewis_smarts.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    with open(data / "Pains" / "wehi_pains.csv") as fh:
        pains = [row[0] for row in csv.reader(fh)]
    return rlewis[::every_rlewis] + pains[::every_pains]


#: Hand-written SMARTS: rings, aromaticity, charges, recursion, ring membership, H counts, wildcards.
HAND_SMARTS = [
    "c1ccccc1", "C(=O)N", "[#7]", "C1CCCCC1", "c1ccncc1", "[CX3](=O)[OX2H1]", "[$([NX3;H2,H1;!$(NC=O)])]",
    "S(=O)(=O)N", "Cl", "c1ccc2ccccc2c1", "[R2]", "[r5]", "[x3]", "[+,-]", "[#6]~[#7]~[#8]", "*", "[!#6;!#1]",
    "[OH]c", "C=C-C=O", "[N+](=O)[O-]", "[a;r6]@[a;r5]", "[CH3][CH2]", "O=[C,S]", "[D4]", "[nH]",
]
