"""Run statistics: totals and one entry per shard (``--stats``, ``--stats-json``, benchmarks)."""

from __future__ import annotations

import json
import os
import resource
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.backends.retry import ShardFailure
from workbench.jobs.base import ShardResult


def cpu_seconds() -> float:
    """User+system CPU of this process and its finished children (grep subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class RunStats:
    """Totals of a run and one entry per finished shard (``attempts``; ``reused`` from an earlier run's
    journal); ``shards_run`` counts the shards this run ran (finished or failed), ``retries`` the
    attempts it ran again, ``failed`` the shards that failed for good (keeping going)."""

    job: str
    backend: str
    workers: int
    shards_total: int
    records: int = 0
    bytes: int = 0
    hits: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    shards_run: int = 0
    shards_reused: int = 0
    retries: int = 0
    shards: list[dict[str, Any]] = field(default_factory=list)
    #: node -> {"start": health, "end": health} (temperature °C, throttle, load), with ``Run(health=True)``
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: ShardResult, reused: bool = False) -> None:
        self.records += result.records
        self.bytes += result.bytes
        self.hits += result.hits
        entry = result.stats()
        if reused:
            entry["reused"] = True
            self.shards_reused += 1
        else:
            self.shards_run += 1
            self.retries += result.attempts - 1
        self.shards.append(entry)

    def fail(self, failure: ShardFailure) -> None:
        """A shard that failed for good (keeping going)."""
        self.shards_run += 1
        self.retries += failure.attempts - 1
        self.failed.append(failure.stats())

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(mb=self.bytes / 1e6, mb_per_s=self.mb_per_s, records_per_s=self.records_per_s,
                 shards_done=len(self.shards))
        return d

    def summary(self) -> str:
        extra = [f"{n} {what}" for n, what in ((self.shards_reused, "reused"), (self.retries, "retries"),
                                                (len(self.failed), "failed")) if n]
        return (
            f"{self.job}: {self.records:,} records, {self.bytes / 1e6:,.1f} MB, {self.seconds:.2f} s, "
            f"{self.mb_per_s:,.1f} MB/s, {self.hits:,} hits, {len(self.shards)}/{self.shards_total} shards "
            + (f"[{', '.join(extra)}] " if extra else "") + f"({self.backend})"
        )

    def _repr_html_(self) -> str:
        """Totals, then one row per node (shards, MB, seconds busy), as HTML tables for Jupyter."""
        from workbench.util.html import key_values, table

        totals = key_values([("job", self.job), ("backend", self.backend), ("workers", self.workers),
                             ("shards", f"{len(self.shards)}/{self.shards_total}"), ("records", self.records),
                             ("MB", f"{self.bytes / 1e6:,.1f}"), ("hits", self.hits),
                             ("wall s", f"{self.seconds:.3f}"), ("MB/s", f"{self.mb_per_s:,.1f}"),
                             ("records/s", f"{self.records_per_s:,.0f}"), ("CPU s (this process)", f"{self.cpu_seconds:.2f}")],
                            caption="run")
        per_node: dict[str, list[float]] = {}
        for shard in self.shards:
            row = per_node.setdefault(shard["node"], [0, 0, 0.0, 0])
            row[0] += 1
            row[1] += shard["bytes"]
            row[2] += shard["seconds"]
            row[3] += shard["hits"]
        nodes = table(["node", "shards", "MB", "task s", "hits"],
                      [[n, int(r[0]), f"{r[1] / 1e6:,.1f}", f"{r[2]:.2f}", int(r[3])] for n, r in sorted(per_node.items())],
                      caption="per node")
        health = ""
        if self.nodes:
            def temp(h: dict[str, Any] | None) -> str:
                t = (h or {}).get("temperature")
                return "-" if t is None else f"{t:.1f}"

            health = table(["node", "°C start", "°C end", "throttle (end)"],
                           [[n, temp(h.get("start")), temp(h.get("end")), ", ".join((h.get("end") or {}).get("throttle") or [])
                             or "-"] for n, h in sorted(self.nodes.items())], caption="node health")
        return totals + nodes + health

    def write_joblog(self, path: str | os.PathLike[str]) -> None:
        """A header, then one TSV row per shard (like GNU parallel's ``--joblog``): shard, node, worker,
        start time (seconds since the epoch), seconds, attempts, outcome (done, reused, failed), hits, error."""
        rows = [(s["shard"], s["node"], s["worker"], f"{s['started']:.3f}", f"{s['seconds']:.3f}", s["attempts"],
                 "reused" if s.get("reused") else "done", s["hits"], "") for s in self.shards]
        rows += [(f["shard"], f["node"], f["worker"], "", "", f["attempts"], "failed", "", f["error"])
                 for f in self.failed]
        header = ("shard", "node", "worker", "start", "seconds", "attempts", "outcome", "hits", "error")
        with open(path, "w") as fh:
            for row in [header, *rows]:
                fh.write("\t".join(" ".join(str(v).split()) for v in row) + "\n")

    def write_json(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
            fh.write("\n")
