"""The journal of an ``-o FILE`` run: FILE appears only complete, and a killed run resumes.

Until the run is complete, everything lives in ``FILE.partial/`` beside FILE:

- ``journal.jsonl``: a header (the job, a digest of its parameters, the output format), then one line
  per shard outcome — shard name, shard sha256, parameters digest, attempts, outcome (``done`` or
  ``failed``), the sha256 of its result and where it ran — appended and fsync'ed as shards finish;
- ``<shard>.out``: each finished shard's result lines (written beside, fsync'ed, renamed).

At the end, FILE is written from the shard results *in manifest order* (so it is the same whatever
order shards finished in, and whether or not the run was resumed), fsync'ed and renamed into
place; then ``FILE.partial/`` is removed. With ``resume``, a shard is reused when its journal line
says done, its sha256 and the parameters still match, and its result file hashes as recorded;
every other shard runs again. Lines cut short by a kill (even a power loss) are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from workbench.backends.retry import ShardFailure
from workbench.errors import JournalError
from workbench.jobs.base import Job, ShardResult
from workbench.storage.manifest import Manifest, ShardInfo
from workbench.storage.results import ResultWriter, output_kind

if TYPE_CHECKING:
    import pyarrow as pa

FORMAT = "workbench-journal"
VERSION = 1


def params_digest(job: Job, kind: str) -> str:
    """What must be equal for a resumed run to reuse results: the job's parameters and the output format."""
    text = json.dumps({"job": job.spec(), "output": kind}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Journal:
    """The partial state of one ``-o FILE`` run (see the module docstring)."""

    def __init__(self, output: str | os.PathLike[str], job: Job, resume: bool = False):
        self.output = Path(output)
        self.kind = output_kind(self.output)
        self.dir = self.output.with_name(self.output.name + ".partial")
        self.path = self.dir / "journal.jsonl"
        self.spec = job.spec()
        self.digest = params_digest(job, self.kind)
        self.done: dict[str, dict[str, Any]] = {}
        header, records = self._read()
        finished = {r["shard"]: r for r in records if r.get("outcome") == "done"}
        if header is not None and finished:
            same = header.get("params") == self.digest
            if not resume:
                hint = "add --resume to continue it, or remove it" if same else (
                    f"it was another run ({_difference(header, self.spec, self.kind)}): remove it to start this one")
                raise JournalError(f"{self.dir} holds {len(finished)} finished shards of an unfinished run "
                                   f"for {self.output}; {hint}")
            if not same:
                raise JournalError(f"cannot resume {self.output}: {self.dir} was written by a run with other "
                                   f"parameters ({_difference(header, self.spec, self.kind)}); repeat that "
                                   f"command, or remove {self.dir} to start over")
            self.done = {name: r for name, r in finished.items() if r.get("params") == self.digest}
        else:  # nothing worth keeping: start a new journal
            shutil.rmtree(self.dir, ignore_errors=True)
        self._fh: IO[bytes] | None = None
        self._recorded = len(self.done)
        self._guard(self._open, self.dir)

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._fh = open(self.path, "ab")
        if new:
            self._append({"format": FORMAT, "version": VERSION, "output": self.output.name, "kind": self.kind,
                          "params": self.digest, "job": self.spec})

    def _read(self) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return None, []
        except OSError as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc.strerror}") from None
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except ValueError:  # cut short by a kill
                continue
        if not rows or rows[0].get("format") != FORMAT:
            return None, []
        if rows[0].get("version") != VERSION:
            raise JournalError(f"{self.path} is a journal of another workbench version; remove {self.dir}")
        return rows[0], rows[1:]

    # -- resuming ------------------------------------------------------------------------
    def reusable(self, manifest: Manifest) -> Iterator[ShardResult]:
        """The earlier run's finished shards that still hold: same shard sha256, result file intact."""
        for shard in manifest.shards:
            record = self.done.get(shard.name)
            if record is None or record.get("sha256") != shard.sha256:
                continue
            try:
                payload = self._part(shard.name).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(payload).hexdigest() != record.get("result_sha256"):
                continue
            yield ShardResult(shard=shard.name, payload=payload, hits=record["hits"], bytes=shard.bytes,
                              records=shard.records, seconds=record["seconds"], worker=record["worker"],
                              node=record["node"], attempts=record["attempts"], started=record.get("started", 0.0))

    # -- recording -----------------------------------------------------------------------
    def record(self, shard: ShardInfo, result: ShardResult) -> None:
        """Keep a finished shard's result (durably), then journal it."""
        part = self._part(shard.name)
        tmp = part.with_name(part.name + ".tmp")

        def write() -> None:
            with open(tmp, "wb") as fh:
                fh.write(result.payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, part)

        try:
            self._guard(write, part)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._append({"shard": shard.name, "sha256": shard.sha256, "params": self.digest, "outcome": "done",
                      "attempts": result.attempts, "result_sha256": hashlib.sha256(result.payload).hexdigest(),
                      "hits": result.hits, "seconds": result.seconds, "started": result.started, "node": result.node,
                      "worker": result.worker})
        self._recorded += 1

    def record_failure(self, shard: ShardInfo, failure: ShardFailure) -> None:
        self._append({"shard": shard.name, "sha256": shard.sha256, "params": self.digest, "outcome": "failed",
                      "attempts": failure.attempts, "error": failure.error, "node": failure.node,
                      "worker": failure.worker})

    def _append(self, row: dict[str, Any]) -> None:
        def write() -> None:
            assert self._fh is not None
            self._fh.write(json.dumps(row).encode() + b"\n")
            self._fh.flush()
            os.fsync(self._fh.fileno())

        self._guard(write, self.path)

    # -- the end -------------------------------------------------------------------------
    def results(self, manifest: Manifest) -> Iterator[bytes]:
        """Every shard's kept result lines, in manifest order."""
        for shard in manifest.shards:
            yield self._part(shard.name).read_bytes()

    def finish(self, schema: "pa.Schema", payloads: Iterable[bytes]) -> None:
        """Write FILE from ``payloads`` beside it, make it durable, rename it into place, drop the journal."""
        tmp = self.dir / f"output{self.kind}"

        def write() -> None:
            self.dir.mkdir(parents=True, exist_ok=True)
            with ResultWriter(tmp, schema) as writer:
                for payload in payloads:
                    writer.write(payload)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.output)
            _fsync_dir(self.output.parent)

        try:
            self._guard(write, self.output)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def close(self) -> None:
        """Close the journal; remove it when it holds no finished shard (nothing to resume)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._recorded == 0:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _part(self, shard: str) -> Path:
        return self.dir / f"{shard}.out"

    @staticmethod
    def _guard(write: Any, target: Path) -> None:
        """Run ``write``; a full disk or another OS error is one clear error naming ``target``."""
        try:
            write()
        except OSError as exc:
            raise JournalError(f"cannot write {target}: {exc.strerror or exc}") from None


def _difference(header: dict[str, Any], spec: dict[str, Any], kind: str) -> str:
    """The parameters that differ, as ``name: earlier -> now``."""
    earlier = {**header.get("job", {}), "output": header.get("kind")}
    now = {**spec, "output": kind}
    changed = [f"{k}: {earlier.get(k)!r} -> {now.get(k)!r}" for k in sorted({*earlier, *now})
               if earlier.get(k) != now.get(k)]
    return ", ".join(changed) or "another job"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
