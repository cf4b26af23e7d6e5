"""``Dataset``: an ingested directory of shards, and the searches a notebook runs on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.dataset.manifest import Manifest, ShardInfo, read_manifest
from workbench.jobs.base import Job
from workbench.runner import Run

if TYPE_CHECKING:
    import pyarrow as pa


class Dataset:
    """A dataset directory: ``manifest.json``, ``shards/``, optionally ``index/``."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory).resolve()
        self.manifest: Manifest = read_manifest(self.directory)

    def __repr__(self) -> str:
        m = self.manifest
        return f"Dataset({str(self.directory)!r}, records={m.records:,}, shards={len(m.shards)})"

    def reload(self) -> None:
        self.manifest = read_manifest(self.directory)

    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "dataset": str(self.directory),
            "records": m.records,
            "rejected": m.rejected,
            "shards": len(m.shards),
            "bytes": m.bytes,
            "sources": m.sources,
            "input_format": m.input_format,
            "index": index_state(self),
            "placement": (m.placement or {}).get("mode") or "none",
        }

    # -- running jobs ------------------------------------------------------------------
    def run(self, job: Job, *, backend: str = "local", workers: int | None = None, progress: bool = False,
            shards: list[ShardInfo] | None = None, **backend_options: Any) -> Run:
        """Run any job (on ``shards``, default all); iterate the ``Run`` for ``ShardResult`` s as shards finish."""
        from dataclasses import replace

        from workbench.backends import get_backend

        manifest = self.manifest if shards is None else replace(self.manifest, shards=shards)
        return Run(job, self.directory, manifest, get_backend(backend, workers=workers, **backend_options),
                   progress=progress)

    def batches(self, job: Job, **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """One Arrow record batch per finished shard (unordered, before the job's global step)."""
        from workbench.output import payload_to_batch

        schema = job.schema()
        for result in self.run(job, **run_options):
            yield payload_to_batch(result.payload, schema)

    def table(self, job: Job, **run_options: Any) -> "pa.Table":
        """All results as one Arrow table, after the job's global step (sort, top-K)."""
        import pyarrow as pa

        schema = job.schema()
        return job.finish(pa.Table.from_batches(list(self.batches(job, **run_options)), schema=schema))

    def grep(self, pattern: str, *, fixed: bool = False, extended: bool = False, ignore_case: bool = False,
             engine: str = "gnu", **run_options: Any) -> "pa.Table":
        """Lines matching ``pattern`` (real grep per shard) as a table of ``cid``, ``smiles``."""
        return self.table(_grep_job(pattern, fixed, extended, ignore_case, engine), **run_options)

    def grep_batches(self, pattern: str, *, fixed: bool = False, extended: bool = False,
                     ignore_case: bool = False, engine: str = "gnu", **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """Streaming form of ``grep``: one record batch per finished shard."""
        return self.batches(_grep_job(pattern, fixed, extended, ignore_case, engine), **run_options)

    # -- chemistry (RDKit) -------------------------------------------------------------
    def build_index(self, *, force: bool = False, **run_options: Any) -> Any:
        """Build or refresh the chemistry index (only shards that changed); returns an ``IndexReport``."""
        from workbench.dataset.index import build_index

        report = build_index(self, force=force, **run_options)
        self.reload()
        return report

    def substructure(self, query: str, *, smiles: bool = False, limit: int | None = None,
                     **run_options: Any) -> "pa.Table":
        """Records whose molecule matches the SMARTS (or SMILES) ``query``: table of cid, smiles."""
        return self.table(_substructure_job(query, smiles, limit), **run_options)

    def substructure_batches(self, query: str, *, smiles: bool = False, limit: int | None = None,
                             **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """Streaming form of ``substructure`` (``limit`` applies per shard here)."""
        return self.batches(_substructure_job(query, smiles, limit), **run_options)

    def similar(self, smiles: str, *, threshold: float = 0.7, top: int | None = None,
                **run_options: Any) -> "pa.Table":
        """Morgan Tanimoto ≥ ``threshold`` to ``smiles``, best first: table of cid, smiles, similarity."""
        return self.table(_similarity_job(smiles, threshold, top), **run_options)

    def similar_batches(self, smiles: str, *, threshold: float = 0.7, top: int | None = None,
                        **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """Streaming form of ``similar``: per-shard batches, each sorted (``top`` applies per shard)."""
        return self.batches(_similarity_job(smiles, threshold, top), **run_options)


def _grep_job(pattern: str, fixed: bool, extended: bool, ignore_case: bool, engine: str) -> Job:
    from workbench.jobs.grep import GrepJob

    return GrepJob(pattern=pattern, fixed=fixed, extended=extended, ignore_case=ignore_case, engine=engine)


def _substructure_job(query: str, smiles: bool, limit: int | None) -> Job:
    from workbench.jobs.substructure import SubstructureJob

    return SubstructureJob(query=query, smiles=smiles, limit=limit)


def _similarity_job(smiles: str, threshold: float, top: int | None) -> Job:
    from workbench.jobs.similarity import SimilarityJob

    return SimilarityJob(smiles=smiles, threshold=threshold, top=top)


def index_state(dataset: Dataset) -> str:
    """'none', 'complete' or 'partial (k/n shards)' for the chemistry index."""
    shards = dataset.manifest.shards
    built = sum((dataset.directory / s.index_path).exists() for s in shards)
    if not dataset.manifest.index or built == 0:
        return "none"
    return "complete" if built == len(shards) else f"partial ({built}/{len(shards)} shards)"


def open_dataset(directory: str | os.PathLike[str]) -> Dataset:
    """Open an ingested dataset directory."""
    return Dataset(directory)
