"""The worker protocol without a container: the Python entry point and the shell loop, run here.

Both read one shard per line on stdin and frame each result as ``TOKEN STATUS NBYTES`` plus
NBYTES of error text; checked against GNU grep and the job run directly.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import asdict

import pytest

from tests.helpers import gnu_grep
from workbench.containers.workers import SHELL_LOOP
from workbench.jobs.grep import GrepJob

TOKEN = "@frame-test@"


def frames(stdout: bytes) -> list[tuple[bytes, int, bytes]]:
    """Split framed stdout into (payload, status, error) per shard."""
    out = []
    while stdout:
        at = stdout.index(TOKEN.encode())
        end = stdout.index(b"\n", at)
        _, status, size = stdout[at:end].split()
        out.append((stdout[:at], int(status), stdout[end + 1: end + 1 + int(size)]))
        stdout = stdout[end + 1 + int(size):]
    return out


@pytest.mark.parametrize("shell", ["sh", "busybox sh"])
def test_shell_loop_frames_each_shard(nci_dataset, shell):
    shards = [nci_dataset.directory / s.path for s in nci_dataset.manifest.shards[:3]]
    job = GrepJob("Cl|Br", extended=True)
    feed = "".join(shlex.join(job.argv(str(p))) + "\n" for p in [*shards, nci_dataset.directory / "missing.tsv"])
    proc = subprocess.run([*shell.split(), "-c", SHELL_LOOP], input=feed.encode(), capture_output=True,
                          env={"WB_FRAME": TOKEN, "PATH": "/usr/bin:/bin"}, check=True)
    got = frames(proc.stdout)
    assert len(got) == 4
    for (payload, status, error), shard in zip(got, shards):
        truth = gnu_grep([shard], "-E", "-e", "Cl|Br")
        assert (sorted(payload.splitlines()), status, error) == (truth, 0 if truth else 1, b"")
    assert got[3][1] == 2 and b"missing.tsv" in got[3][2]


def test_python_worker_serves_framed_requests_of_any_job(nci_dataset):
    shards = nci_dataset.manifest.shards[:2]
    patterns = ["[nH]", "Cl"]
    requests = [{"job": GrepJob(p).spec(), "shard": asdict(s)} for p in patterns for s in shards]
    requests.append({"job": GrepJob("C").spec(), "shard": "shards/absent.tsv"})
    proc = subprocess.run([sys.executable, "-m", "workbench.containers.worker", "--root", str(nci_dataset.directory),
                           "--frame", TOKEN], input="".join(json.dumps(r) + "\n" for r in requests).encode(),
                          capture_output=True, check=True)
    got = frames(proc.stdout)
    for (payload, status, _), (pattern, shard) in zip(got, [(p, s) for p in patterns for s in shards]):
        assert status == 0
        assert sorted(payload.splitlines()) == gnu_grep([nci_dataset.directory / shard.path], "-e", pattern)
    assert got[4][1] == 75 and b"absent.tsv" in got[4][2]  # an OS error: retried (another node may hold it)


def test_python_worker_with_shard_arguments_and_count(nci_dataset):
    job = GrepJob("N", count_only=True)
    shard = nci_dataset.manifest.shards[0]
    proc = subprocess.run([sys.executable, "-m", "workbench.containers.worker", "--root", str(nci_dataset.directory),
                           json.dumps(job.spec()), shard.path], capture_output=True, check=True)
    assert int(proc.stdout) == len(gnu_grep([nci_dataset.directory / shard.path], "-e", "N"))
    bad = subprocess.run([sys.executable, "-m", "workbench.containers.worker", '{"job": "nope"}'], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown job 'nope'" in bad.stderr
