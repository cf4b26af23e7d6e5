"""Build one shard's chemistry index file (runs on a worker): parse every SMILES once, write
pickles and fingerprints in the format of ``workbench.storage.index``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.chem.fingerprints import morgan_fp
from workbench.chem.molecules import mol_to_pickle, parse_smiles, quiet_rdkit, read_shard_records
from workbench.chem.screening import molecule_pattern_fp
from workbench.storage.index import META_KEY, ROW_GROUP, index_params, index_schema
from workbench.storage.manifest import ShardInfo


def build_shard_index(shard_path: str, index_path: str, shard: ShardInfo) -> list[tuple[int, str]]:
    """Index one shard in row groups (bounded memory); return the records RDKit cannot parse.

    The file is written beside its final name and renamed, so a reader never sees half an index.
    """
    quiet_rdkit()
    schema = index_schema()
    invalid: list[tuple[int, str]] = []
    records = 0
    Path(index_path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{index_path}.tmp-{os.getpid()}"
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for cids, smiles in read_shard_records(shard_path, ROW_GROUP):
                pickles: list[bytes | None] = []
                patterns: list[bytes | None] = []
                morgans: list[bytes | None] = []
                for cid, smi in zip(cids, smiles):
                    mol = parse_smiles(smi)
                    if mol is None:
                        invalid.append((cid, smi))
                        pickles.append(None), patterns.append(None), morgans.append(None)
                        continue
                    pickles.append(mol_to_pickle(mol))
                    patterns.append(molecule_pattern_fp(mol))
                    morgans.append(morgan_fp(mol))
                records += len(cids)
                writer.write_batch(pa.record_batch([cids, smiles, pickles, patterns, morgans], schema=schema),
                                   row_group_size=ROW_GROUP)
            meta = {**index_params(), "shard": shard.name, "shard_sha256": shard.sha256,
                    "records": records, "invalid": len(invalid)}
            writer.add_key_value_metadata({META_KEY: json.dumps(meta).encode()})
        os.replace(tmp, index_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return invalid
