"""Run a job over a dataset on a backend: shard results as they finish, the job's final step, stats.

``Run`` owns the one final step of every job (``Job.finish_payloads``: sort, top-K, reduce), so
the CLI and the Python API give identical results: iterate ``payloads()`` (what the CLI prints),
or take ``batches()`` / ``table()`` (Arrow) — all three are the same records.

Notes (the job's, from its ``prepare`` step, and each shard's) are kept in ``Run.notes`` and issued
as ``WorkbenchNote`` warnings as they come; the CLI prints them as ``note: …`` lines.

A run hands its ``RetryPolicy`` (retries, shard timeout, keep going) to the backend. Keeping going,
shards that failed for good are listed in ``Run.failed`` (``ShardFailure``: shard, error,
attempts) and the results are those of the other shards. With ``output=FILE`` the run keeps a
journal beside FILE (``workbench.runner.journal``); FILE appears when ``payloads()`` (or
``batches()``, ``table()``) completes with no failed shard, and ``resume=True`` reuses the shards an
earlier, interrupted run of the same job finished.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.backends.base import Backend
from workbench.backends.retry import RetryPolicy, ShardFailure
from workbench.errors import JobError, WorkbenchNote
from workbench.jobs.base import Job, ShardResult
from workbench.runner.journal import Journal
from workbench.runner.stats import RunStats, cpu_seconds
from workbench.storage.integrity import check_sizes
from workbench.storage.manifest import Manifest
from workbench.storage.results import payload_to_batch
from workbench.util.memory import release_freed_memory, unpool_large_blocks
from workbench.util.notebook import in_notebook

if TYPE_CHECKING:
    import pyarrow as pa


class Run:
    """Iterate to get ``ShardResult`` s as shards finish (before the job's final step); or take
    ``payloads()``, ``batches()``, ``table()`` (after it). Afterwards ``stats`` holds the totals.

    ``progress``: show a progress bar (None: in a Jupyter notebook only). ``health``: record each
    node's temperature, throttling and load at the start and end of the run in ``stats.nodes``."""

    def __init__(self, job: Job, root: Path, manifest: Manifest, backend: Backend, progress: bool | None = False,
                 policy: RetryPolicy | None = None, output: str | os.PathLike[str] | None = None,
                 resume: bool = False, health: bool = False):
        self.job, self.root, self.manifest, self.backend = job, root, manifest, backend
        self.progress, self.health = progress, health
        self.policy = policy or RetryPolicy()
        self.output, self.resume = (Path(output) if output else None), resume
        self.stats = RunStats(job=job.name, backend=backend.describe(), workers=backend.workers,
                              shards_total=len(manifest.shards))
        #: Records in the final output (for count-only jobs: the total count), once ``payloads()`` ended.
        self.count = 0
        #: What the caller should know (no index, a damaged index file searched by text), in order.
        self.notes: list[str] = []
        #: Shards that failed for good, in the order they failed (a run that does not keep going stops at the first).
        self.failed: list[ShardFailure] = []
        self._journal: Journal | None = None

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard of the backend's cluster (None: no distributed cluster, or no dashboard)."""
        return self.backend.dashboard_link()

    def _repr_html_(self) -> str:
        return self.stats._repr_html_()

    def payloads(self) -> Iterator[bytes]:
        """The job's result lines after its final step: as shards finish when the job has none,
        else in one piece after the last shard. Sets ``count``; writes ``output`` when complete."""
        job, held = self.job, {}
        for result in self:
            if job.count_only:
                continue
            if job.final_step:
                held[result.shard] = result.payload
            else:  # one (possibly empty) payload per shard
                self.count += result.payload.count(b"\n")
                yield result.payload
        final = b""
        if job.count_only:
            self.count = job.final_count(self.stats.hits)
        elif job.final_step:  # in dataset order, whatever order shards finished in
            final = job.finish_payloads([held[s.name] for s in self.manifest.shards if s.name in held])
            self.count = final.count(b"\n")
            yield final
        if self._journal is not None and not self.failed:
            streamed = job.count_only or not job.final_step
            self._journal.finish(job.schema(), self._journal.results(self.manifest) if streamed else [final])

    def batches(self) -> Iterator["pa.RecordBatch"]:
        """``payloads()`` as Arrow record batches of the job's schema."""
        schema = self.job.schema()
        for payload in self.payloads():
            yield payload_to_batch(payload, schema)

    def table(self) -> "pa.Table":
        """Every result record as one Arrow table (after the job's final step). Keeping going, when
        shards failed: a ``PartialResult`` warning, and the table's schema metadata
        ``workbench.failed`` lists them as JSON (``Run.failed`` has them too)."""
        import pyarrow as pa

        table = pa.Table.from_batches(list(self.batches()), schema=self.job.schema())
        release_freed_memory()  # the payloads and their parsing: freed, and not kept resident either
        if self.failed:  # keeping going: say which shards are missing, in the table and as a warning
            import json

            from workbench.errors import PartialResult

            listing = json.dumps([f.stats() for f in self.failed]).encode()
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"workbench.failed": listing})
            warnings.warn(PartialResult(f"{len(self.failed)} shards failed; the table holds the other shards' "
                                        f"records: " + "; ".join(f"{f.shard}: {f.error}" for f in self.failed)),
                          stacklevel=2)
        return table

    def note(self, text: str) -> None:
        """Keep ``text`` in ``notes`` and issue it as a ``WorkbenchNote`` warning."""
        self.notes.append(text)
        warnings.warn(text, WorkbenchNote, stacklevel=2)

    def __iter__(self) -> Iterator[ShardResult]:
        from dataclasses import replace

        check_sizes(self.root, self.manifest)  # cheap (one stat per shard): a changed shard never runs
        unpool_large_blocks()  # payloads and tables this process receives leave nothing resident when dropped
        for text in self.backend.prepare(self.job, self.manifest) or []:  # a job without notes may return None
            self.note(text)
        before = self._node_health() if self.health else None
        journal = self._journal = Journal(self.output, self.job, self.resume) if self.output else None
        start, cpu0 = time.perf_counter(), cpu_seconds()
        bar = None
        if self.progress or (self.progress is None and in_notebook()):
            from workbench.runner.progress import progress_for

            bar = progress_for(self.stats, lambda: self.dashboard_link)  # known once the backend started
        try:
            reused = list(journal.reusable(self.manifest)) if journal else []
            for result in reused:
                self.stats.add(result, reused=True)
                if bar is not None:
                    bar.update()
                yield result
            done = {r.shard for r in reused}
            todo = replace(self.manifest, shards=[s for s in self.manifest.shards if s.name not in done])
            if not todo.shards:
                return
            try:
                for item in self.backend.map_shards(self.job, self.root, todo, self.policy):
                    if isinstance(item, ShardFailure):
                        self._failed(item)
                        continue
                    if journal is not None:
                        journal.record(self.manifest.shard(item.shard), item)
                    self.stats.add(item)
                    for text in item.notes:
                        self.note(text)
                    if bar is not None:
                        bar.update()
                    yield item
            except JobError as exc:  # a final failure that stops the run: recorded as well
                if getattr(exc, "failure", None) is not None:
                    self._failed(exc.failure)  # type: ignore[attr-defined]
                raise
        finally:
            self.stats.seconds = time.perf_counter() - start
            self.stats.cpu_seconds = cpu_seconds() - cpu0
            if bar is not None:
                bar.close()
            if journal is not None:
                journal.close()
            if before is not None:
                after = self._node_health()
                self.stats.nodes = {n: {"start": before.get(n), "end": after.get(n)} for n in {*before, *after}}

    def _failed(self, failure: ShardFailure) -> None:
        self.failed.append(failure)
        self.stats.fail(failure)
        if self._journal is not None:
            self._journal.record_failure(self.manifest.shard(failure.shard), failure)

    def _node_health(self) -> dict[str, dict[str, object]]:
        """Every node's health now: the cluster's nodes (those the backend uses), else this machine."""
        from workbench.cluster.probe import local_health, probe_health

        cluster_file = getattr(self.backend, "cluster", None)
        if not cluster_file:
            return local_health()
        from workbench.cluster.inventory import load_cluster

        nodes = getattr(self.backend, "nodes", None)
        return probe_health(load_cluster(cluster_file), list(nodes) if nodes is not None else None)
