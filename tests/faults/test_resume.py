"""`-o FILE` is atomic and resumable: SIGKILL of the CLI at a random moment, then `--resume` runs only the
unfinished shards and writes the very FILE an uninterrupted run writes; other parameters are refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

import workbench as wb
from tests.faults.conftest import SLOW_PATTERN, trial_rngs, wait_until
from workbench.storage.manifest import write_manifest

pytestmark = pytest.mark.faults

WB = [sys.executable, "-m", "workbench"]
RESUME_TRIALS = int(os.environ.get("WORKBENCH_FAULT_RESUME_TRIALS", "5"))


def cli(dataset, output: Path, command: list[str], *extra: str) -> list[str]:
    return [*WB, command[0], "-d", str(dataset.directory), "-o", str(output), *extra, *command[1:]]


def finished(output: Path) -> int:
    """Shards the journal beside ``output`` records as done (lines cut short by the kill do not count)."""
    try:
        lines = (output.parent / f"{output.name}.partial" / "journal.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    done = 0
    for line in lines:
        try:
            done += json.loads(line).get("outcome") == "done"
        except ValueError:
            pass
    return done


def killed_midway(args: list[str], output: Path, target: int) -> int:
    """Start the CLI, SIGKILL it once ``target`` shards are journaled; the shards it finished. What the
    CLI had started (grep processes, pool worker processes) must end by itself soon after."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert wait_until(lambda: finished(output) >= target or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()!r}"
        started = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert not output.exists()  # never a partial FILE
    assert wait_until(lambda: not [p for p in started if _running(p)], timeout=60), "the killed run left processes"
    return finished(output)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


COMMANDS = {
    "grep-tsv": (".tsv", ["grep", SLOW_PATTERN]),
    "grep-parquet": (".parquet", ["grep", SLOW_PATTERN]),
    "sorted-reduce": (".tsv", ["run", "--reduce", "sort", "--", "grep", "-e", SLOW_PATTERN, "{shard}"]),
    "substructure-processes": (".jsonl", ["substructure", "c1ccccc1N"]),  # the local process pool
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_resume_after_sigkill_writes_the_uninterrupted_file(faults_dataset, tmp_path, name):
    suffix, command = COMMANDS[name]
    ds, shards = faults_dataset, len(faults_dataset.manifest.shards)
    reference = tmp_path / f"reference{suffix}"
    assert subprocess.run(cli(ds, reference, command), capture_output=True, timeout=300).returncode == 0
    output, stats = tmp_path / f"hits{suffix}", tmp_path / "stats.json"
    for trial, rng in trial_rngs(f"resume-{name}", RESUME_TRIALS):
        done = killed_midway(cli(ds, output, command), output, rng.randint(1, shards - 3))
        proc = subprocess.run(cli(ds, output, command, "--resume", "--stats-json", str(stats)),
                              capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(stats.read_text())
        assert (report["shards_reused"], report["shards_run"]) == (done, shards - done), f"trial {trial}"
        assert sum(bool(s.get("reused")) for s in report["shards"]) == done
        assert output.read_bytes() == reference.read_bytes(), f"trial {trial}"
        assert not output.with_name(output.name + ".partial").exists()  # the journal is gone on success
        output.unlink()


def test_resume_with_other_parameters_is_refused(faults_dataset, tmp_path):
    ds, output = faults_dataset, tmp_path / "hits.tsv"
    done = killed_midway(cli(ds, output, ["grep", SLOW_PATTERN]), output, 2)
    other = subprocess.run(cli(ds, output, ["grep", "-i", SLOW_PATTERN], "--resume"), capture_output=True, text=True)
    assert other.returncode == 2
    assert other.stderr.count("\n") == 1 and other.stderr.startswith(
        f"error: cannot resume {output}: {output}.partial was written by a run with other parameters "
        "(ignore_case: False -> True)"), other.stderr
    fresh = subprocess.run(cli(ds, output, ["grep", SLOW_PATTERN]), capture_output=True, text=True)
    assert fresh.returncode == 2 and fresh.stderr.count("\n") == 1
    assert "finished shards of an unfinished run" in fresh.stderr and "add --resume" in fresh.stderr
    assert finished(output) == done and not output.exists()  # nothing lost by the refusals
    assert subprocess.run(cli(ds, output, ["grep", SLOW_PATTERN], "--resume"), capture_output=True).returncode == 0
    reference = tmp_path / "reference.tsv"
    subprocess.run(cli(ds, reference, ["grep", SLOW_PATTERN]), capture_output=True, check=True)
    assert output.read_bytes() == reference.read_bytes()


def test_resume_reruns_failed_and_changed_shards_only(faults_dataset, tmp_path):
    """A keep-going run leaves its journal; once the failing shard works and another shard changed (new
    sha256), --resume runs exactly those two and writes what a fresh run on the new data writes."""
    from tests.faults.test_local import failing_grep

    copy, marks = tmp_path / "ds", tmp_path / "marks"
    shutil.copytree(faults_dataset.directory, copy)
    marks.mkdir()
    ds = wb.open_dataset(copy)
    failing, changed = ds.manifest.shards[1], ds.manifest.shards[4]
    (marks / Path(failing.path).name).touch()
    output, stats = tmp_path / "hits.tsv", tmp_path / "stats.json"
    command = ["run", "--", *failing_grep(marks)]
    proc = subprocess.run(cli(ds, output, command, "--keep-going"), capture_output=True, text=True)
    assert proc.returncode == 2 and failing.name in proc.stderr and "re-run with --resume" in proc.stderr
    assert not output.exists()
    (marks / Path(failing.path).name).unlink()
    _append_line(copy, ds, changed.name, "999999\tCC(=O)NC\n")
    proc = subprocess.run(cli(wb.open_dataset(copy), output, command, "--resume", "--stats-json", str(stats)),
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(stats.read_text())
    assert (report["shards_reused"], report["shards_run"]) == (len(ds.manifest.shards) - 2, 2)
    assert {s["shard"] for s in report["shards"] if not s.get("reused")} == {failing.name, changed.name}
    reference = tmp_path / "reference.tsv"
    subprocess.run(cli(wb.open_dataset(copy), reference, command), capture_output=True, check=True)
    assert output.read_bytes() == reference.read_bytes() and b"999999\tCC(=O)NC\n" in output.read_bytes()


def _append_line(root: Path, ds, shard_name: str, line: str) -> None:
    """Change a shard as a re-ingest would: new content, new size and sha256 in the manifest."""
    import dataclasses
    import hashlib

    shard = ds.manifest.shard(shard_name)
    path = root / shard.path
    path.write_bytes(path.read_bytes() + line.encode())
    data = path.read_bytes()
    new = dataclasses.replace(shard, records=shard.records + 1, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    ds.manifest.shards[ds.manifest.shards.index(shard)] = new
    ds.manifest.records += 1
    write_manifest(root, ds.manifest)


def test_a_full_disk_leaves_no_partial_file(faults_dataset, tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(disk)], check=True)
    try:
        output = disk / "hits.tsv"
        proc = subprocess.run(cli(faults_dataset, output, ["grep", "C"]), capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "No space left on device" in proc.stderr, proc.stderr
        assert not output.exists()
        assert not list((disk / "hits.tsv.partial").glob("*.tmp"))  # no half-written shard result either
    finally:
        subprocess.run(["umount", str(disk)], check=True)
