"""Fixtures shared by every suite: real molecules from RDKit's bundled NCI set."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def rdkit_data() -> Path:
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir)


@pytest.fixture(scope="session")
def nci_smi(rdkit_data: Path) -> Path:
    """RDKit's ``first_5K.smi``: 4,999 real NCI molecules, ``SMILES<TAB>ID``."""
    return rdkit_data / "NCI" / "first_5K.smi"


@pytest.fixture(scope="session")
def nci_dataset(tmp_path_factory: pytest.TempPathFactory, nci_smi: Path):
    """The NCI set ingested into ~8 shards (shared by the session: do not modify it)."""
    import workbench as wb

    return wb.ingest([nci_smi], tmp_path_factory.mktemp("nci") / "ds", shard_size="32kB")
