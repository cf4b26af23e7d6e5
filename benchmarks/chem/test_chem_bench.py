"""pytest-benchmark: chemistry search on RDKit's NCI set, each beside RDKit's own way (``make bench``).

Groups put workbench and RDKit side by side: substructure (warm index vs SubstructLibrary),
Tanimoto (numpy kernel vs BulkTanimotoSimilarity), index build (vs parse + fingerprints).
The head-to-head scripts in this directory give the figures quoted in the README.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from substructure_vs_substructlibrary import panel, rdkit_parse_and_fingerprint, substruct_library, vouched  # noqa: E402

QUERIES = [smarts for smarts, _ in panel()][:6]


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    """RDKit's NCI set as one shard, indexed; plus the parsed molecules."""
    from rdkit import RDConfig

    from workbench.chem.indexing import build_shard_index
    from workbench.jobs.base import ShardTask
    from workbench.storage.manifest import ShardInfo

    lines = (Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi").read_text().splitlines()
    smiles = [line.split()[0] for line in lines]
    root = tmp_path_factory.mktemp("chem-bench")
    data = "".join(f"{i}\t{s}\n" for i, s in enumerate(smiles, 1)).encode()
    (root / "shards").mkdir()
    (root / "shards" / "nci.tsv").write_bytes(data)
    info = ShardInfo("nci", "shards/nci.tsv", len(smiles), len(data), hashlib.sha256(data).hexdigest())
    task = ShardTask(str(root), info)
    build_shard_index(task.path, task.index_path, info)
    return ShardTask(str(root), vouched(info, Path(task.index_path))), smiles


@pytest.mark.parametrize("smarts", QUERIES)
def test_substructure_workbench_warm(benchmark, shard, smarts):
    from workbench.jobs.substructure import SubstructureJob

    benchmark.group = f"substructure {smarts}"
    job = SubstructureJob(smarts)
    job.run(shard[0])
    assert benchmark(job.run, shard[0]).hits >= 0


@pytest.mark.parametrize("smarts", QUERIES)
def test_substructure_rdkit_substructlibrary(benchmark, shard, smarts):
    from rdkit import Chem

    benchmark.group = f"substructure {smarts}"
    library, _ = substruct_library(rdkit_parse_and_fingerprint(shard[1])[1])
    query = Chem.MolFromSmarts(smarts)
    benchmark(library.GetMatches, query, numThreads=1, maxResults=10**9)


@pytest.fixture(scope="module")
def fingerprints(shard):
    """Morgan fingerprints of the NCI set, repeated to 200,000 rows (raw bytes)."""
    from workbench.chem.fingerprints import morgan_fp
    from workbench.chem.molecules import parse_smiles

    raw = [morgan_fp(m) for m in map(parse_smiles, shard[1]) if m is not None]
    raw = (raw * (200_000 // len(raw) + 1))[:200_000]
    return np.frombuffer(b"".join(raw), dtype=np.uint8).reshape(len(raw), 256)


@pytest.mark.parametrize("mode", ["threshold 0.7", "top 10"])
def test_tanimoto_workbench_search(benchmark, fingerprints, mode):
    from workbench.chem.similarity import MorganSearch

    benchmark.group = "tanimoto 200k"
    search = MorganSearch.from_fingerprints(fingerprints, np.ones(len(fingerprints), dtype=bool))
    query = fingerprints[17].tobytes()
    if mode == "top 10":
        benchmark(search.nearest, query, 10)
    else:
        benchmark(search.threshold, query, 0.7)
    benchmark.extra_info["comparisons/s"] = len(fingerprints) / benchmark.stats.stats.median


def test_tanimoto_rdkit_bulk(benchmark, fingerprints):
    from rdkit import DataStructs

    benchmark.group = "tanimoto 200k"
    bitvects = [DataStructs.CreateFromFPSText(row.tobytes().hex()) for row in fingerprints]
    benchmark(DataStructs.BulkTanimotoSimilarity, bitvects[17], bitvects)
    benchmark.extra_info["comparisons/s"] = len(fingerprints) / benchmark.stats.stats.median


def test_index_build_workbench(benchmark, shard, tmp_path):
    from workbench.chem.indexing import build_shard_index

    benchmark.group = "index build NCI 5k"
    task, smiles = shard
    benchmark.pedantic(build_shard_index, (task.path, str(tmp_path / "i.arrow"), task.shard), rounds=3)
    benchmark.extra_info["mol/s"] = len(smiles) / benchmark.stats.stats.median


def test_index_build_rdkit_parse_and_fingerprint(benchmark, shard):
    benchmark.group = "index build NCI 5k"
    benchmark.pedantic(rdkit_parse_and_fingerprint, (shard[1],), rounds=3)
    benchmark.extra_info["mol/s"] = len(shard[1]) / benchmark.stats.stats.median
