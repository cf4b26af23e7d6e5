"""pytest-benchmark: ingest and grep throughput (``make bench``)."""

from __future__ import annotations

import pytest
from data import cid_smiles_file, dataset

import workbench as wb

SIZE = 200 * 10**6


@pytest.fixture(scope="module")
def source():
    return cid_smiles_file(SIZE)


@pytest.fixture(scope="module")
def ds():
    return wb.open_dataset(dataset(SIZE, shard_size="16MB"))


def test_ingest_200MB(benchmark, source, tmp_path):
    result = benchmark.pedantic(lambda: wb.ingest([source], tmp_path / "ds", shard_size="64MB", force=True),
                                rounds=3, iterations=1)
    benchmark.extra_info["MB/s"] = SIZE / 1e6 / benchmark.stats.stats.median
    assert result.manifest.rejected == 0


@pytest.mark.parametrize("pattern,fixed", [("C(=O)N", True), ("c1ccc2[nH]ccc2c1", True), ("Cl.*Br", False)])
def test_grep_200MB(benchmark, ds, pattern, fixed):
    table = benchmark.pedantic(lambda: ds.grep(pattern, fixed=fixed), rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["MB/s"] = ds.manifest.bytes / 1e6 / benchmark.stats.stats.median
    assert table.num_rows > 0
