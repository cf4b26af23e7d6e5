"""``SubstructureJob``: records whose molecule has a substructure match for a SMARTS/SMILES query.

Exactly ``Chem.MolFromSmiles(smiles).HasSubstructMatch(query)`` with RDKit's defaults. With an
index: screen with the screen fingerprint (``chem.screen_fp``; numpy over the memory-mapped uint64 words), then match
the survivors on molecules unpickled from the index (a few kept decoded in the worker between
queries). Without
one: parse the shard's SMILES.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from workbench.errors import QueryError
from workbench.jobs.base import Job, ShardOutput, ShardTask

if TYPE_CHECKING:
    import numpy as np
    from rdkit import Chem

    from workbench.chem.loaded import LoadedShard
    from workbench.storage.manifest import Manifest


@dataclass
class SubstructureJob(Job):
    query: str
    smiles: bool = False
    limit: int | None = None
    count_only: bool = False

    name: ClassVar[str] = "substructure"
    executor: ClassVar[Literal["threads", "processes"]] = "processes"

    def prepare(self, manifest: "Manifest") -> list[str]:
        from workbench.chem.query import substructure_query
        from workbench.chem.shards import index_coverage_notes

        if self.limit is not None and self.limit < 1:
            raise QueryError(f"invalid limit {self.limit}: must be at least 1")
        substructure_query(self.query, self.smiles)
        return index_coverage_notes(manifest)

    def run(self, task: ShardTask) -> ShardOutput:
        from workbench.chem.query import substructure_query
        from workbench.chem.shards import indexed_shard, tsv_lines, tsv_payload

        query = substructure_query(self.query, self.smiles)
        shard, note = indexed_shard(task.index_path, task.shard)
        notes = [note] if note else []
        if shard is not None:
            rows = _match_index(shard, query, self.limit)
            if self.count_only:
                return ShardOutput(b"", len(rows), notes)
            return ShardOutput(tsv_payload(*shard.columns(rows)), len(rows), notes)
        cids, smiles = _match_text(task.path, query, self.limit)
        return ShardOutput(b"" if self.count_only else tsv_lines(cids, smiles), len(cids), notes)

    @property
    def final_step(self) -> bool:
        return self.limit is not None

    def finish_payloads(self, payloads: list[bytes]) -> bytes:
        """With ``limit``: the ``limit`` lowest CIDs over all shards (ties: dataset order), as each
        shard's payload holds its own ``limit`` lowest."""
        lines = [line for p in payloads for line in p.splitlines(keepends=True)]
        if self.limit is not None:
            lines.sort(key=lambda line: int(line.split(b"\t", 1)[0]))
            lines = lines[: self.limit]
        return b"".join(lines)

    def final_count(self, hits: int) -> int:
        """Shard counts are each cut to ``limit``: their sum reaches it exactly when the total does."""
        return hits if self.limit is None else min(hits, self.limit)


def _match_index(shard: "LoadedShard", query: "Chem.Mol", limit: int | None) -> "np.ndarray":
    """Shard rows that match: ascending, or with ``limit`` the ``limit`` lowest CIDs in CID order."""
    from workbench.chem.loaded import CACHE
    from workbench.chem.screening import query_screen

    rows = shard.screen(query_screen(query))
    if limit is not None:  # match in CID order, so the first ``limit`` hits are the lowest CIDs
        rows = rows[shard.cids(rows).argsort(kind="stable")]
    return shard.match(rows, query, allowance=CACHE.room(), limit=limit)


def _match_text(path: str, query: "Chem.Mol", limit: int | None) -> tuple[list[int], list[str]]:
    """Parse the shard's SMILES and match; with ``limit``, the ``limit`` lowest CIDs (ties: shard
    order), parsing no record that could not be among them."""
    import heapq

    from workbench.chem.molecules import parse_smiles, quiet_rdkit, read_shard_records

    quiet_rdkit()
    hits: list[tuple[int, str]] = []
    worst: list[tuple[int, int, str]] = []  # with limit: (-cid, -position, smiles), a max-heap of the kept hits
    position = 0
    for batch_cids, batch_smiles in read_shard_records(path):
        for cid, smi in zip(batch_cids, batch_smiles):
            position += 1
            if limit is not None and len(worst) == limit and cid >= -worst[0][0]:
                continue  # cannot be among the lowest ``limit``: not even parsed
            mol = parse_smiles(smi)
            if mol is None or not mol.HasSubstructMatch(query):
                continue
            if limit is None:
                hits.append((cid, smi))
            elif len(worst) < limit:
                heapq.heappush(worst, (-cid, -position, smi))
            else:
                heapq.heapreplace(worst, (-cid, -position, smi))
    if limit is not None:
        hits = [(-c, s) for c, _, s in sorted(worst, reverse=True)]
    return [c for c, _ in hits], [s for _, s in hits]
