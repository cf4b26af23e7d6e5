"""The public API (the top of the library): ``Dataset``, ``open_dataset``, ``ingest``, ``fetch_dataset``, ``verify``.

A ``Dataset`` is an ingested directory of shards and the searches a notebook runs on it. Every
search goes through ``Dataset.run`` (a ``workbench.runner.Run``), as the CLI's do, so both give the
same records.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends.retry import DEFAULT_RETRIES, RetryPolicy
from workbench.jobs.base import Job
from workbench.runner import Run, open_backend
from workbench.storage import index as index_files
from workbench.storage.manifest import Manifest, ShardInfo, read_manifest, write_manifest

if TYPE_CHECKING:
    import pyarrow as pa

    from workbench.storage.ingest import Source


class Dataset:
    """A dataset directory: ``manifest.json``, ``shards/``, optionally ``index/``."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.directory = Path(directory).resolve()
        self.manifest: Manifest = read_manifest(self.directory)

    def __repr__(self) -> str:
        m = self.manifest
        return f"Dataset({str(self.directory)!r}, records={m.records:,}, shards={len(m.shards)})"

    def _repr_html_(self) -> str:
        """The dataset's facts and its shards as HTML tables (Jupyter)."""
        from workbench.util.html import esc, key_values, table

        facts = self.info()
        head = key_values([(k, ", ".join(v) if isinstance(v, list) else v) for k, v in facts.items()
                           if k != "bytes"] + [("MB", f"{facts['bytes'] / 1e6:,.1f}")], caption="dataset")
        shards = self.manifest.shards
        shown = shards if len(shards) <= 12 else shards[:6] + shards[-6:]
        rows = [[s.name, s.records, f"{s.bytes / 1e6:,.2f}", s.first_cid, s.last_cid] for s in shown]
        if len(shown) < len(shards):
            rows.insert(6, ["…", "", "", "", ""])
        return (f'<div class="workbench-dataset"><b>{esc(self.directory.name)}</b>'
                + head + table(["shard", "records", "MB", "first CID", "last CID"], rows,
                               caption=f"{len(shards)} shards") + "</div>")

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
    def run(self, job: Job, *, backend: str = "local", workers: int | None = None, progress: bool | None = None,
            shards: list[ShardInfo] | None = None, retries: int = DEFAULT_RETRIES,
            shard_timeout: float | None = None, keep_going: bool = False,
            output: str | os.PathLike[str] | None = None, resume: bool = False, health: bool = False,
            **backend_options: Any) -> Run:
        """Run any job (on ``shards``, default all): iterate the ``Run`` for ``ShardResult`` s as shards
        finish, or take its ``payloads()``, ``batches()`` or ``table()`` (after the job's final step).

        A shard attempt that fails for a transient reason (killed process or container, lost worker
        or node, timeout) runs again up to ``retries`` times; one running longer than
        ``shard_timeout`` seconds is killed. A shard that fails for good raises ``JobError``, unless
        ``keep_going``: then the other shards finish and ``Run.failed`` lists the failed ones.
        ``output``: also write the results to that file (.tsv, .jsonl, .parquet), atomically, with a
        journal beside it that ``resume=True`` continues after an interruption.
        ``progress``: a progress bar (default: in a Jupyter notebook). ``health``: record each node's
        temperature and throttling at the start and end in ``run.stats.nodes``.
        """
        from dataclasses import replace

        policy = RetryPolicy(retries=retries, shard_timeout=shard_timeout, keep_going=keep_going)
        manifest = self.manifest if shards is None else replace(self.manifest, shards=shards)
        return Run(job, self.directory, manifest, open_backend(backend, workers=workers, **backend_options),
                   progress=progress, policy=policy, output=output, resume=resume, health=health)

    def batches(self, job: Job, **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """Arrow record batches as shards finish; a job with a final step (sort, top-K, reduce)
        yields its one final batch after the last shard. The same records as ``table``."""
        return self.run(job, **run_options).batches()

    def table(self, job: Job, **run_options: Any) -> "pa.Table":
        """All results as one Arrow table, after the job's final step: what the CLI prints.
        ``run_options`` are those of ``run`` (``retries``, ``shard_timeout``, ``keep_going``, …); keeping
        going, failed shards come as a ``PartialResult`` warning and the table's ``workbench.failed`` metadata."""
        return self.run(job, **run_options).table()

    def grep(self, pattern: str, *, fixed: bool = False, extended: bool = False, ignore_case: bool = False,
             engine: str = "auto", **run_options: Any) -> "pa.Table":
        """Lines matching ``pattern`` (real grep per shard) as a table of ``cid``, ``smiles``."""
        return self.table(_grep_job(pattern, fixed, extended, ignore_case, engine), **run_options)

    def grep_batches(self, pattern: str, *, fixed: bool = False, extended: bool = False,
                     ignore_case: bool = False, engine: str = "auto", **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """Streaming form of ``grep``: one record batch per finished shard."""
        return self.batches(_grep_job(pattern, fixed, extended, ignore_case, engine), **run_options)

    def verify(self, cluster: str | os.PathLike[str] | None = None) -> "VerifyReport":
        """Check every file's sha256 here and (``cluster``) on every node holding a copy."""
        return verify(self, cluster)

    # -- chemistry (RDKit) -------------------------------------------------------------
    def build_index(self, *, force: bool = False, **run_options: Any) -> Any:
        """Build or refresh the chemistry index (only shards that changed); returns an ``IndexReport``."""
        report = build_index(self, force=force, **run_options)
        self.reload()
        return report

    def substructure(self, query: str, *, smiles: bool = False, limit: int | None = None,
                     **run_options: Any) -> "pa.Table":
        """Records whose molecule matches the SMARTS (or SMILES) ``query``: table of cid, smiles."""
        return self.table(_substructure_job(query, smiles, limit), **run_options)

    def substructure_batches(self, query: str, *, smiles: bool = False, limit: int | None = None,
                             **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """Streaming form of ``substructure`` (with ``limit``: one batch, the lowest CIDs, at the end)."""
        return self.batches(_substructure_job(query, smiles, limit), **run_options)

    def similar(self, smiles: str, *, threshold: float | None = None, top: int | None = None,
                **run_options: Any) -> "pa.Table":
        """Morgan Tanimoto ≥ ``threshold`` to ``smiles``, best first: table of cid, smiles, similarity.

        ``top=K`` alone gives the K nearest (threshold 0, as chemfp); the threshold is 0.7 otherwise.
        """
        return self.table(_similarity_job(smiles, threshold, top), **run_options)

    def similar_batches(self, smiles: str, *, threshold: float | None = None, top: int | None = None,
                        **run_options: Any) -> Iterator["pa.RecordBatch"]:
        """Streaming form of ``similar``: one batch, sorted and cut to ``top``, after the last shard."""
        return self.batches(_similarity_job(smiles, threshold, top), **run_options)


def _grep_job(pattern: str, fixed: bool, extended: bool, ignore_case: bool, engine: str) -> Job:
    from workbench.jobs.grep import GrepJob

    return GrepJob(pattern=pattern, fixed=fixed, extended=extended, ignore_case=ignore_case, engine=engine)


def _substructure_job(query: str, smiles: bool, limit: int | None) -> Job:
    from workbench.jobs.substructure import SubstructureJob

    return SubstructureJob(query=query, smiles=smiles, limit=limit)


def _similarity_job(smiles: str, threshold: float | None, top: int | None) -> Job:
    from workbench.jobs.similarity import SimilarityJob

    return SimilarityJob(smiles=smiles, threshold=threshold, top=top)


def index_state(dataset: Dataset) -> str:
    """'none', 'complete', 'partial (k/n shards)' or 'unusable (why): re-run `workbench index`' for
    the chemistry index (unusable: built with another RDKit release, format or fingerprints)."""
    from workbench.storage.index import incompatibility

    shards = dataset.manifest.shards
    built = sum(bool(s.index_sha256) and (dataset.directory / s.index_path).exists() for s in shards)
    if not dataset.manifest.index or built == 0:
        return "none"
    reason = incompatibility(dataset.manifest.index)
    if reason is not None:
        return f"unusable ({reason}): re-run `workbench index`"
    return "complete" if built == len(shards) else f"partial ({built}/{len(shards)} shards)"


def open_dataset(directory: str | os.PathLike[str]) -> Dataset:
    """Open an ingested dataset directory."""
    return Dataset(directory)


def ingest(sources: "Sequence[Source] | Source", dataset_dir: str | os.PathLike[str], shard_size: str | int = "64MB",
           format: str = "auto", force: bool = False, smiles_field: str | None = None) -> Dataset:
    """Shard ``sources`` into ``dataset_dir`` (``workbench.storage.ingest``); returns the ``Dataset``."""
    from workbench.storage.ingest import ingest as ingest_shards

    return Dataset(ingest_shards(sources, dataset_dir, shard_size=shard_size, format=format, force=force,
                                 smiles_field=smiles_field))


def fetch_dataset(name: str, target: str | os.PathLike[str], shard_size: str = "64MB", force: bool = False) -> Dataset:
    """Build the dataset of recipe ``name`` (``workbench datasets list``) into ``target``."""
    from workbench.storage.recipes import fetch

    return Dataset(fetch(name, target, shard_size=shard_size, force=force))


@dataclass
class IndexReport:
    """What ``Dataset.build_index`` did."""

    shards: int
    built: int
    up_to_date: int
    records: int
    invalid: "pa.Table"  # cid, smiles of every record RDKit cannot parse (all shards)
    invalid_list: Path
    stats: Any = None  # RunStats of the build (None when nothing needed building)
    failed: list[Any] = field(default_factory=list)  # ShardFailure of shards not indexed (keep_going)

    def summary(self) -> str:
        return (f"index: {self.shards} shards ({self.built - len(self.failed)} built, {self.up_to_date} up to date"
                + (f", {len(self.failed)} failed" if self.failed else "")
                + f"), {self.records:,} records, {self.invalid.num_rows:,} RDKit cannot parse"
                + (f" (listed in {self.invalid_list})" if self.invalid.num_rows else ""))


def build_index(dataset: "Dataset", *, force: bool = False, backend: str = "local", workers: int | None = None,
                progress: bool | None = None, **backend_options: Any) -> IndexReport:
    """Build or refresh the index of ``dataset``: one task per stale shard, manifest updated."""
    from workbench.jobs.indexing import IndexJob

    root, manifest = dataset.directory, dataset.manifest
    todo = index_files.stale_shards(root, manifest, force)
    reset = force or not manifest.index or index_files.incompatibility(manifest.index) is not None
    built: dict[str, dict[str, Any]] = {}
    stats, failed = None, []
    if todo:
        run = dataset.run(IndexJob(), shards=todo, backend=backend, workers=workers, progress=progress,
                          **backend_options)
        try:
            for result in run:
                shard = manifest.shard(result.shard)
                built[shard.name] = index_files.built_entry(root, shard, result.hits)
        finally:  # keep what finished, even when interrupted
            if built or reset:
                index_files.record_built(manifest, built, reset)
                write_manifest(root, manifest)
        stats, failed = run.stats, run.failed
    elif manifest.index is None:
        index_files.record_built(manifest, {}, True)
        write_manifest(root, manifest)
    index_files.remove_superseded(root, manifest)
    invalid = index_files.invalid_records(root, manifest)
    return IndexReport(shards=len(manifest.shards), built=len(todo), up_to_date=len(manifest.shards) - len(todo),
                       records=manifest.records, invalid=invalid,
                       invalid_list=index_files.write_invalid_list(root, invalid), stats=stats, failed=failed)


@dataclass
class VerifyReport:
    """What ``verify`` checked: files here and on the nodes, and every problem found."""

    dataset: str
    files: int
    node_files: int
    nodes: list[str]
    problems: list[Any]  # workbench.storage.integrity.Problem

    @property
    def intact(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        where = f"{self.files} files here" + (f" and {self.node_files} copies on {len(self.nodes)} nodes"
                                               if self.nodes else "")
        verdict = "all intact" if self.intact else f"{len(self.problems)} bad (listed on stdout)"
        return f"verified the sha256 of {where}: {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "intact": self.intact, "files": self.files, "node_files": self.node_files,
                "nodes": self.nodes, "problems": [p.to_dict() for p in self.problems]}


def verify(dataset: "Dataset | str | os.PathLike[str]", cluster: str | os.PathLike[str] | None = None) -> VerifyReport:
    """The sha256 of every shard and index file here and, with ``cluster``, of every copy on its node."""
    from workbench.storage.integrity import verify_local

    ds = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    files, problems = verify_local(ds.directory, ds.manifest)
    node_files, nodes = 0, list[str]()
    if cluster is not None:
        from workbench.cluster.verify import verify_nodes

        node_files, nodes, remote = verify_nodes(ds.directory, ds.manifest, cluster)
        problems += remote
    return VerifyReport(str(ds.directory), len(files), node_files, nodes, problems)
