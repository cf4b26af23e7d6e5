"""``SimilarityJob``: records whose Morgan Tanimoto to a query is at least ``threshold``.

Radius 2, 2048 bits, as ``DataStructs.BulkTanimotoSimilarity`` computes it, with popcount bounds
(``workbench.chem.similarity.MorganSearch``: only bins that can reach the threshold, or the K-th
best, are scored). Results sorted by similarity (descending, then CID); ``top`` keeps the K best
over all shards. As in chemfp, ``top`` alone means the K nearest
(threshold 0); without ``top`` the threshold defaults to ``DEFAULT_THRESHOLD``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from workbench.errors import QueryError
from workbench.jobs.base import Column, Job, ShardOutput, ShardTask

if TYPE_CHECKING:
    import numpy as np

    from workbench.chem.similarity import MorganBatches, MorganSearch
    from workbench.storage.manifest import Manifest


DEFAULT_THRESHOLD = 0.7


@dataclass
class SimilarityJob(Job):
    smiles: str
    threshold: float | None = None  # None: 0 with ``top`` (the K nearest), else DEFAULT_THRESHOLD
    top: int | None = None

    name: ClassVar[str] = "similar"
    columns: ClassVar[tuple[Column, ...]] = (("cid", "int64"), ("smiles", "string"), ("similarity", "double"))
    executor: ClassVar[Literal["threads", "processes"]] = "processes"

    def __post_init__(self) -> None:
        if self.threshold is None:
            self.threshold = 0.0 if self.top is not None else DEFAULT_THRESHOLD

    def prepare(self, manifest: "Manifest") -> list[str]:
        from workbench.chem.query import similarity_query
        from workbench.chem.shards import index_coverage_notes

        if not 0.0 <= self.threshold <= 1.0:
            raise QueryError(f"invalid threshold {self.threshold}: must be between 0 and 1")
        if self.top is not None and self.top < 1:
            raise QueryError(f"invalid top {self.top}: must be at least 1")
        similarity_query(self.smiles)
        return index_coverage_notes(manifest)

    def run(self, task: ShardTask) -> ShardOutput:
        import numpy as np

        from workbench.chem.fingerprints import morgan_fp
        from workbench.chem.query import similarity_query
        from workbench.chem.shards import indexed_shard, tsv_lines

        query = morgan_fp(similarity_query(self.smiles))
        shard, note = indexed_shard(task.index_path, task.shard)
        search: "MorganSearch | MorganBatches"
        if shard is not None:
            search = shard.morgan()
        else:
            all_cids, all_smiles, search = _text_fingerprints(task.path)
        if self.top is None:
            rows, sims = search.threshold(query, self.threshold)
        else:
            rows, sims = search.nearest(query, self.top, self.threshold)
        cids = shard.cids(rows) if shard is not None else np.asarray(all_cids, dtype=np.int64)[rows]
        order = self._best(sims, cids)
        rows, sims = rows[order], sims[order]
        if shard is not None:
            out_cids, out_smiles = shard.records(rows)
        else:
            out_cids, out_smiles = [all_cids[r] for r in rows], [all_smiles[r] for r in rows]
        return ShardOutput(tsv_lines(out_cids, out_smiles, map(repr, sims.tolist())), len(rows),
                           [note] if note else [])

    def _best(self, sims: "np.ndarray", cids: "np.ndarray") -> "np.ndarray":
        """Positions ordered by similarity (descending) then CID, cut to ``top``."""
        import numpy as np

        order = np.lexsort((cids, -sims))
        return order[: self.top] if self.top else order

    final_step = True  # type: ignore[assignment]

    def finish_payloads(self, payloads: list[bytes]) -> bytes:
        """All shards' lines, sorted by similarity (descending, then CID), cut to ``top``."""
        lines = [line for p in payloads for line in p.splitlines(keepends=True)]
        lines.sort(key=_sort_key)
        return b"".join(lines[: self.top] if self.top else lines)


def _sort_key(line: bytes) -> tuple[float, int]:
    cid, _, rest = line.partition(b"\t")
    return -float(rest.rsplit(b"\t", 1)[1]), int(cid)


def _text_fingerprints(path: str) -> tuple[list[int], list[str], "MorganSearch"]:
    """Parse a shard's SMILES: CIDs, SMILES and the search over their Morgan fingerprints."""
    import numpy as np

    from workbench.chem.fingerprints import morgan_fp
    from workbench.chem.molecules import parse_smiles, quiet_rdkit, read_shard_records
    from workbench.chem.similarity import MorganSearch
    from workbench.storage.index import FP_BYTES

    quiet_rdkit()
    cids: list[int] = []
    smiles: list[str] = []
    raw = bytearray()
    valid: list[bool] = []
    empty = bytes(FP_BYTES)
    for batch_cids, batch_smiles in read_shard_records(path):
        cids += batch_cids
        smiles += batch_smiles
        for smi in batch_smiles:
            mol = parse_smiles(smi)
            valid.append(mol is not None)
            raw += morgan_fp(mol) if mol is not None else empty
    fps = np.frombuffer(bytes(raw), dtype=np.uint8).reshape(len(cids), FP_BYTES)
    return cids, smiles, MorganSearch.from_fingerprints(fps, np.array(valid, dtype=bool))
