"""Run statistics: totals and one entry per shard (``--stats``, ``--stats-json``, benchmarks)."""

from __future__ import annotations

import json
import os
import resource
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.jobs.base import ShardResult


def cpu_seconds() -> float:
    """User+system CPU of this process and its finished children (grep subprocesses)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class RunStats:
    job: str
    backend: str
    workers: int
    shards_total: int
    records: int = 0
    bytes: int = 0
    hits: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    shards: list[dict[str, Any]] = field(default_factory=list)

    def add(self, result: ShardResult) -> None:
        self.records += result.records
        self.bytes += result.bytes
        self.hits += result.hits
        self.shards.append(result.stats())

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
        return (
            f"{self.job}: {self.records:,} records, {self.bytes / 1e6:,.1f} MB, {self.seconds:.2f} s, "
            f"{self.mb_per_s:,.1f} MB/s, {self.hits:,} hits, {len(self.shards)}/{self.shards_total} shards "
            f"({self.backend})"
        )

    def write_json(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(), fh, indent=1)
            fh.write("\n")
