"""``workbench grep``: the CLI contract, checked against GNU grep over the same shard lines."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import workbench as wb
from tests.helpers import gnu_grep, require, shard_files

WB = [sys.executable, "-m", "workbench"]
EXTRA = ["C\\C=C/C", "F/C=C\\F", "N#N", "CC#N", "C1=CC=CC=C1.Cl", "O=[N+]([O-])c1ccccc1", "c1cc[nH]c1",
         "CC(=O)NC", "CCl", "[Na+].[Cl-]", "C[C@@H](O)Cl", "'", "C$C", "C`C", "C-v"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, nci_smi):
    """NCI molecules plus SMILES full of regex and shell metacharacters, in ~9 shards."""
    tmp = tmp_path_factory.mktemp("grep")
    lines = [f"{cid}\t{smi}" for smi, cid in (ln.split() for ln in nci_smi.read_text().splitlines())]
    lines += [f"{900000 + i}\t{smi}" for i, smi in enumerate(EXTRA)]
    src = tmp / "in.tsv"
    src.write_text("\n".join(lines) + "\n")
    return wb.ingest([src], tmp / "ds", shard_size="24kB")


def grep_cli(dataset, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*WB, "grep", "--dataset", str(dataset.directory), *args], capture_output=True, cwd=cwd)


PANEL = [
    ("[nH]", []), ("C(=O)N", []), ("C(=O)N", ["-F"]), ("[N+](=O)[O-]", ["-F"]), ("[N+]([O-])=O", ["-F"]),
    ("#N", []), ("C\\", ["-F"]), ("\\\\", []), (".", []), ("Cl|Br", ["-E"]), ("^9000", []), ("N$", ["-E"]),
    ("^[0-9]+\tC(C|N)", ["-E"]), ("cl", ["-i"]), ("NA+", ["-i", "-F"]), ("[@]", []), ("c1ccccc1", ["-F"]),
    ("'; touch pwned; #", []), ("$(touch pwned)", ["-F"]), ("`touch pwned`", ["-F"]), ("-v", []), ("--help", ["-F"]),
]


@pytest.mark.parametrize("pattern,flags", PANEL)
def test_output_equals_gnu_grep(dataset, tmp_path, pattern, flags):
    proc = grep_cli(dataset, *flags, "--", pattern, cwd=tmp_path)
    expected = gnu_grep(shard_files(dataset.directory), *flags, "-e", pattern)
    assert sorted(proc.stdout.splitlines()) == expected
    assert proc.returncode == (0 if expected else 1), proc.stderr
    assert proc.stderr == b""
    assert not (tmp_path / "pwned").exists()


def test_count_prints_one_total(dataset):
    proc = grep_cli(dataset, "-c", "C(=O)O", "-F")
    assert proc.stdout == f"{len(gnu_grep(shard_files(dataset.directory), '-F', '-e', 'C(=O)O'))}\n".encode()
    assert proc.returncode == 0
    none = grep_cli(dataset, "-c", "XYZZY")
    assert none.stdout == b"0\n" and none.returncode == 1


@pytest.mark.parametrize("args,message", [
    (["C(", "-E"], "error: invalid pattern 'C(': grep: Unmatched ( or \\(\n"),
    (["C", "-F", "-E"], "error: -F and -E cannot be combined\n"),
    (["C", "--engine", "perl"], "error: unknown grep engine 'perl' (choose from auto, gnu, ripgrep, busybox)\n"),
    (["C", "--backend", "local", "--scheduler", "tcp://x:1"], "error: --scheduler needs --backend dask\n"),
    (["C", "-o", "out.csv"], "error: cannot write 'out.csv': output suffix must be one of .tsv, .jsonl, .parquet\n"),
])
def test_errors_are_one_line_exit_2(dataset, tmp_path, args, message):
    proc = grep_cli(dataset, *args, cwd=tmp_path)
    assert (proc.returncode, proc.stderr.decode(), proc.stdout) == (2, message, b"")


def test_missing_dataset_and_debug_traceback(tmp_path):
    proc = subprocess.run([*WB, "grep", "C", "--dataset", str(tmp_path / "nope")], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr) == (2, f"error: dataset '{tmp_path / 'nope'}' does not exist\n")
    debug = subprocess.run([*WB, "--debug", "grep", "C", "--dataset", str(tmp_path / "nope")], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_missing_engine(dataset, tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with GNU grep but neither rg nor busybox
    bin_dir.mkdir()
    (bin_dir / "grep").symlink_to(shutil.which("grep"))
    env = {**os.environ, "PATH": str(bin_dir)}
    proc = subprocess.run([*WB, "grep", "C", "--dataset", str(dataset.directory), "--engine", "ripgrep"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr == "error: grep engine 'ripgrep' needs 'rg', which is not installed (apt-get install ripgrep)\n"


@pytest.mark.parametrize("engine,tool", [("ripgrep", "rg"), ("busybox", "busybox")])
@pytest.mark.parametrize("pattern,flags", [("C(=O)N", ["-F"]), ("Cl|Br", ["-E"]), ("c1ccccc1", ["-F", "-i"]), ("N$", ["-E"])])
def test_other_engines_agree_with_gnu(dataset, engine, tool, pattern, flags):
    require("engines", shutil.which(tool) is not None, f"{tool} is not installed")
    proc = grep_cli(dataset, *flags, "--engine", engine, "--", pattern)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == gnu_grep(shard_files(dataset.directory), *flags, "-e", pattern)


def test_outputs_and_stats(dataset, tmp_path):
    expected = gnu_grep(shard_files(dataset.directory), "-F", "-e", "C(=O)N")
    rows = sorted((int(c), s.decode()) for c, s in (ln.split(b"\t") for ln in expected))
    for suffix in ("tsv", "jsonl", "parquet"):
        out = tmp_path / f"hits.{suffix}"
        proc = grep_cli(dataset, "-F", "C(=O)N", "-o", str(out), "--stats", "--stats-json", str(tmp_path / "s.json"))
        assert proc.returncode == 0 and sorted(proc.stdout.splitlines()) == expected
        if suffix == "tsv":
            got = [(int(c), s.decode()) for c, s in (ln.split(b"\t") for ln in out.read_bytes().splitlines())]
        elif suffix == "jsonl":
            got = [(r["cid"], r["smiles"]) for r in map(json.loads, out.read_text().splitlines())]
        else:
            table = pq.read_table(out)
            assert str(table.schema.field("cid").type) == "int64"
            got = list(zip(table["cid"].to_pylist(), table["smiles"].to_pylist()))
        assert sorted(got) == rows
    summary = proc.stderr.decode()
    assert summary.startswith("grep: 5,014 records") and f"{len(expected)} hits" in summary and "MB/s" in summary
    stats = json.loads((tmp_path / "s.json").read_text())
    assert stats["hits"] == len(expected) and stats["records"] == dataset.manifest.records
    assert {e["shard"] for e in stats["shards"]} == {s.name for s in dataset.manifest.shards}
    assert {"shard", "node", "worker", "seconds", "bytes", "hits"} <= set(stats["shards"][0])


def test_interrupt_leaves_no_process_behind(tmp_path, nci_smi):
    """Ctrl-C during a long grep: exit 130, no grep subprocess left running."""
    lines = [ln.split()[0] for ln in nci_smi.read_text().splitlines()]
    src = tmp_path / "big.tsv"
    with open(src, "w") as fh:
        for rep in range(60):
            fh.write("".join(f"{rep * 10000 + i + 1}\t{s}\n" for i, s in enumerate(lines)))
    wb.ingest([src], tmp_path / "ds", shard_size="1MB")
    marker = "(C.+)\\1\\1\\1"  # back-references: GNU grep backtracks, so it is busy when the signal arrives
    proc = subprocess.Popen([*WB, "grep", "-E", marker, "--dataset", str(tmp_path / "ds"), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not _greps(marker):
        time.sleep(0.05)
    assert _greps(marker), f"grep never started: {proc.poll()=} {proc.stderr.read() if proc.poll() is not None else ''}"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.decode().strip().endswith("error: interrupted")
    time.sleep(0.2)
    assert _greps(marker) == []


def _greps(marker: str) -> list[str]:
    """PIDs of grep processes whose arguments include ``marker``."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argv[0].endswith(b"grep") and marker.encode() in argv:
            pids.append(proc.name)
    return pids


def test_auto_engine_runs_ripgrep_for_fixed_strings_on_ascii_shards(dataset, tmp_path):
    """``auto`` picks ripgrep only where its lines are provably GNU grep's; ``--engine gnu`` forces GNU grep."""
    from workbench.jobs.grep import GrepJob

    require("engines", shutil.which("rg") is not None, "rg is not installed")
    shards = dataset.manifest.shards
    assert shards and all(s.ascii for s in shards)  # SMILES and CIDs are ASCII: ingest records it per shard
    assert {GrepJob("C(=O)N", fixed=True).engine_for(s) for s in shards} == {"ripgrep"}
    assert {GrepJob("cl", fixed=True, ignore_case=True).engine_for(s) for s in shards} == {"ripgrep"}
    assert {GrepJob("C(=O)N", fixed=True, engine="gnu").engine_for(s) for s in shards} == {"gnu"}
    assert {GrepJob("C(=O)N").engine_for(s) for s in shards} == {"gnu"}  # a regex: GNU grep's dialect
    assert {GrepJob("Cl|Br", extended=True).engine_for(s) for s in shards} == {"gnu"}
    assert GrepJob("C\u00e9", fixed=True).engine_for(shards[0]) == "gnu"  # a non-ASCII pattern
    older = replace(shards[0], ascii=None)  # a dataset ingested before the flag existed
    assert GrepJob("C(=O)N", fixed=True).engine_for(older) == "gnu"
    for flags in (["-F"], ["-F", "-i"], ["-F", "-c"]):
        for engine in ("auto", "gnu"):
            proc = grep_cli(dataset, *flags, "--engine", engine, "--", "c1ccccc1")
            expected = gnu_grep(shard_files(dataset.directory), *flags[:2] if "-i" in flags else ["-F"], "-e", "c1ccccc1")
            got = proc.stdout.splitlines()
            assert (got == [str(len(expected)).encode()]) if "-c" in flags else (sorted(got) == expected)
