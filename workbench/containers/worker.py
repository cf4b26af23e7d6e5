"""The container worker entry point: ``python -m workbench.containers.worker``.

``python -m workbench.containers.worker SPEC SHARD ...`` runs the job ``SPEC`` (``Job.spec()`` as JSON) on
each shard — its manifest entry as JSON (jobs check an index against the shard's checksum) or
a plain path — and prints each shard's output (what ``Job.parse_output`` reads) to stdout.

``python -m workbench.containers.worker --frame TOKEN`` serves requests read one per line on stdin,
``{"job": SPEC, "shard": ENTRY}``, and after each shard's output writes the frame line
``TOKEN STATUS NBYTES`` followed by NBYTES of error text (status 0: the shard's notes, one a
line; status 75: an error that may not repeat, an OS or memory error, see
``workbench.errors.transient``) — the framing of the shell loop of command images (with ``WB_OUT``
set, each shard's output goes to that file instead of stdout) — so one long-lived container serves
many shards of many jobs and keeps what jobs cache (decoded molecules) between them. Needs only the
standard library and the job's
own imports (no Dask, no CLI).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from workbench.errors import transient
from workbench.jobs import Job, ShardTask, job_from_spec
from workbench.storage.manifest import ShardInfo


def shard_task(root: str, shard: str | dict[str, Any]) -> ShardTask:
    """The task for ``shard`` (a manifest entry, as JSON or a dict, or a file path) of the dataset at ``root``."""
    if isinstance(shard, str) and shard.startswith("{"):
        shard = json.loads(shard)
    if isinstance(shard, dict):
        return ShardTask(root, ShardInfo.from_dict(shard))
    path = os.path.join(root, shard)
    name = os.path.splitext(os.path.basename(path))[0]
    return ShardTask(root, ShardInfo(name, os.path.relpath(path, root), 0, os.path.getsize(path), ""))


def shard_stdout(job: Job, task: ShardTask) -> tuple[bytes, list[str]]:
    """One shard's output as ``parse_output`` expects it (``-c`` style for count-only jobs), and its notes."""
    out = job.run(task)
    return (f"{out.hits}\n".encode() if job.count_only else out.payload), out.notes


def frame(token: str, status: int, error: bytes = b"") -> bytes:
    return f"{token} {status} {len(error)}\n".encode() + error


def serve(root: str, token: str) -> None:
    """Run each request read on stdin; frame every result on stdout."""
    jobs: dict[str, Job] = {}
    out = sys.stdout.buffer
    out_file = os.environ.get("WB_OUT")
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            key = json.dumps(request["job"], sort_keys=True)
            job = jobs.get(key) or jobs.setdefault(key, job_from_spec(request["job"]))
            payload, notes = shard_stdout(job, shard_task(root, request["shard"]))
            status, error = 0, "".join(f"{n}\n" for n in notes).encode()
        except Exception as exc:  # reported to the client, which names the shard (and may retry it)
            payload, status, error = b"", 75 if transient(exc) else 2, f"{type(exc).__name__}: {exc}".encode()
        if out_file:  # an engine on this host: the output goes to a file the client reads
            with open(out_file, "wb") as fh:
                fh.write(payload)
            payload = b""
        out.write(payload + frame(token, status, error))
        out.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.containers.worker", description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", help="the job as JSON (Job.spec())")
    parser.add_argument("shards", nargs="*", help="shards: manifest entries as JSON, or paths")
    parser.add_argument("--root", default="/data", help="dataset directory as mounted here (default /data)")
    parser.add_argument("--frame", metavar="TOKEN", help="serve framed requests read on stdin")
    args = parser.parse_args(argv)
    if args.frame:
        serve(args.root, args.frame)
        return 0
    if not args.spec:
        parser.error("give a job SPEC and shards, or --frame TOKEN")
    try:
        job = job_from_spec(json.loads(args.spec))
    except Exception as exc:
        print(f"error: bad job spec: {exc}", file=sys.stderr)
        return 2
    for shard in args.shards:
        try:
            payload, notes = shard_stdout(job, shard_task(args.root, shard))
            sys.stdout.buffer.write(payload)
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
        except Exception as exc:
            print(f"error: shard {shard[:200]}: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 2
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
