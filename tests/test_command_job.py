"""The command job and TOML job definitions in jobs/, against the same tools run directly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import shard_files

WB = [sys.executable, "-m", "workbench"]
JOBS = Path(__file__).resolve().parent.parent / "jobs"


def run(dataset, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*WB, "run", "--dataset", str(dataset.directory), *args], capture_output=True, text=True)


def concatenated(dataset) -> str:
    return "".join(p.read_text() for p in shard_files(dataset.directory))


def test_count_records_definition(nci_dataset):
    proc = run(nci_dataset, "--job", str(JOBS / "count-records.toml"))
    assert (proc.returncode, proc.stdout) == (0, "4999\n")


def test_long_smiles_definition_equals_awk(nci_dataset):
    proc = run(nci_dataset, "--job", str(JOBS / "long-smiles.toml"))
    expected = subprocess.run(["awk", "-F", "\t", "length($2) > 100"], input=concatenated(nci_dataset),
                              capture_output=True, text=True).stdout
    assert sorted(proc.stdout.splitlines()) == sorted(expected.splitlines()) and expected


def test_element_census_sums_per_key(nci_dataset):
    proc = run(nci_dataset, "--job", str(JOBS / "element-census.toml"))
    text = concatenated(nci_dataset)
    expected = [f"{e}\t{sum(e in line for line in text.splitlines())}" for e in sorted(["F", "Cl", "Br", "I"])]
    assert proc.stdout.splitlines() == expected


def test_inline_command_and_errors(nci_dataset, tmp_path):
    assert run(nci_dataset, "--reduce", "sum", "--", "wc", "-l").stdout == "4999\n"
    missing = run(nci_dataset, "--", "no-such-program-x")
    assert (missing.returncode, missing.stderr) == (2, "error: command 'no-such-program-x' is not installed\n")
    failing = run(nci_dataset, "--", "false")
    assert failing.returncode == 2 and failing.stderr.startswith("error: shard shard-") and "false exited 1" in failing.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("command = 'not a list'\n")
    proc = run(nci_dataset, "--job", str(bad))
    assert proc.returncode == 2 and "needs command = [" in proc.stderr
    neither = run(nci_dataset)
    assert (neither.returncode, neither.stderr) == (2, "error: give either a command (after --) or --job FILE\n")
