"""``IndexJob``: build the chemistry index of one shard (see ``workbench.storage.index``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from workbench.jobs.base import Job, ShardOutput, ShardTask


@dataclass
class IndexJob(Job):
    """Parse every SMILES once; write pickles and fingerprints to ``ShardInfo.index_path``.

    The payload lists the records RDKit cannot parse (``CID<TAB>SMILES``); ``hits`` counts them.
    """

    name: ClassVar[str] = "index"
    executor: ClassVar[Literal["threads", "processes"]] = "processes"

    def run(self, task: ShardTask) -> ShardOutput:
        from workbench.chem.indexing import build_shard_index
        from workbench.chem.shards import tsv_lines

        invalid = build_shard_index(task.path, task.index_path, task.shard)
        return ShardOutput(tsv_lines([c for c, _ in invalid], [s for _, s in invalid]), len(invalid))
