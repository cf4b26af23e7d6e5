"""The conformance suite every backend passes (like fsspec's abstract tests).

Subclass ``BackendConformance`` and override the ``run_options`` fixture with the keyword
arguments ``Dataset.run`` needs for your backend (``backend=…`` and its options).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import workbench as wb
from tests.helpers import gnu_grep, shard_files
from workbench.errors import DatasetError, JobError, QueryError
from workbench.jobs.grep import GrepJob
from workbench.runner import open_backend

PANEL = [
    ("C(=O)N", ["-F"]),
    ("[nH]", []),
    ("[N+]([O-])=O", ["-F"]),
    ("#N", ["-F"]),
    (".", []),
    ("Cl|Br", ["-E"]),
    ("^1[0-9]{2}\t", ["-E"]),
    ("cl", ["-i"]),
]


class BackendConformance:
    @pytest.fixture
    def run_options(self) -> dict:
        raise NotImplementedError("override run_options in the backend's test class")

    @pytest.mark.parametrize("pattern,flags", PANEL)
    def test_grep_equals_gnu_grep(self, nci_dataset, run_options, pattern, flags):
        job = GrepJob(pattern, fixed="-F" in flags, extended="-E" in flags, ignore_case="-i" in flags)
        got = sorted(line for r in nci_dataset.run(job, **run_options) for line in r.payload.splitlines())
        expected = gnu_grep(shard_files(nci_dataset.directory), *flags, "-e", pattern)
        assert got == expected
        assert expected  # every panel pattern matches something in the NCI set

    def test_count_only(self, nci_dataset, run_options):
        run = nci_dataset.run(GrepJob("C(=O)O", fixed=True, count_only=True), **run_options)
        results = list(run)
        assert all(r.payload == b"" for r in results)
        assert run.stats.hits == len(gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "C(=O)O"))

    def test_every_shard_once_with_stats(self, nci_dataset, run_options):
        run = nci_dataset.run(GrepJob("C"), **run_options)
        names = [r.shard for r in run]
        assert sorted(names) == sorted(s.name for s in nci_dataset.manifest.shards)
        assert run.stats.records == nci_dataset.manifest.records
        assert run.stats.bytes == nci_dataset.manifest.bytes
        for entry in run.stats.shards:
            assert entry["node"] and entry["worker"] and entry["seconds"] >= 0

    def test_table_schema(self, nci_dataset, run_options):
        table = nci_dataset.grep("c1ccc", fixed=True, **run_options)
        assert table.schema.names == ["cid", "smiles"]
        assert str(table.schema.field("cid").type) == "int64"
        expected = gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "c1ccc")
        assert sorted(f"{c}\t{s}".encode() for c, s in zip(table["cid"].to_pylist(), table["smiles"].to_pylist())) == expected

    def test_no_match_yields_empty(self, nci_dataset, run_options):
        table = nci_dataset.grep("NO_SUCH_SMILES", fixed=True, **run_options)
        assert table.num_rows == 0

    def test_bad_regex_is_rejected_before_running(self, nci_dataset, run_options):
        with pytest.raises(QueryError, match="invalid pattern"):
            nci_dataset.grep("C(", extended=True, **run_options)

    def test_failing_shard_is_named(self, nci_dataset, run_options, tmp_path):
        """A shard that fails on the backend (here: gone after the run's own checks) is named."""
        copy = tmp_path / "broken"
        shutil.copytree(nci_dataset.directory, copy)
        ds = wb.open_dataset(copy)
        victim = ds.manifest.shards[1]
        Path(copy, victim.path).unlink()
        options = dict(run_options)
        backend = open_backend(options.pop("backend", "local"), **options)
        with pytest.raises(JobError, match=victim.name):
            list(backend.map_shards(GrepJob("C"), copy, ds.manifest))

    def test_changed_shard_is_refused_before_running(self, nci_dataset, run_options, tmp_path):
        copy = tmp_path / "changed"
        shutil.copytree(nci_dataset.directory, copy)
        ds = wb.open_dataset(copy)
        victim = ds.manifest.shards[1]
        with open(copy / victim.path, "ab") as fh:
            fh.write(b"1\tC\n")
        with pytest.raises(DatasetError, match=f"shard {victim.name}: .* bytes but the manifest says .*workbench verify"):
            ds.grep("C", **run_options)
