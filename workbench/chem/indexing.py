"""Build one shard's chemistry index file (runs on a worker): parse every SMILES once, write
pickles and fingerprints in the layout of ``workbench.storage.index`` (Arrow IPC, uncompressed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from workbench.chem.fingerprints import morgan_fp
from workbench.chem.molecules import mol_to_pickle, parse_smiles, quiet_rdkit, read_shard_records
from workbench.chem.screen_fp import CHUNK, Graph
from workbench.chem.screening import molecule_graph, molecule_screen_fps
from workbench.chem.similarity import morgan_layout
from workbench.storage.index import BATCH_ROWS, FP_BYTES, META_KEY, index_params, index_schema, partial_path, remove_stale_partials
from workbench.storage.manifest import ShardInfo
from workbench.util.arrow import arrow_array, binary_array, string_array

_EMPTY = bytes(FP_BYTES)


def build_shard_index(shard_path: str, index_path: str, shard: ShardInfo) -> list[tuple[int, str]]:
    """Index one shard, one record batch at a time (bounded memory); return the records RDKit
    cannot parse. The file is written beside its final name and renamed, so a reader never sees
    half an index; partial files that killed builds left are deleted first."""
    quiet_rdkit()
    meta = {**index_params(), "shard": shard.name, "shard_sha256": shard.sha256}
    schema = index_schema().with_metadata({META_KEY: json.dumps(meta).encode()})
    invalid: list[tuple[int, str]] = []
    Path(index_path).parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(index_path)
    tmp = partial_path(index_path)
    try:
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            for cids, smiles in read_shard_records(shard_path, BATCH_ROWS):
                writer.write_batch(index_batch(cids, smiles, schema, invalid))
        os.replace(tmp, index_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return invalid


def index_batch(cids: list[int], smiles: list[str], schema: pa.Schema,
                invalid: list[tuple[int, str]]) -> pa.RecordBatch:
    """One record batch: parse each SMILES, pickle it, fingerprint it (unparsable: appended to
    ``invalid``, null pickle, zero fingerprints). The screen fingerprints are made for the whole
    batch at once, from each molecule's graph."""
    n = len(cids)
    pickles: list[bytes | None] = []
    morgans = bytearray()
    screens = np.zeros((n, FP_BYTES), dtype=np.uint8)  # unparsable rows: zero
    pending: list[tuple[int, Graph | None]] = []  # screen graphs not yet fingerprinted (bounded memory)

    def fingerprint_pending() -> None:
        screens[[r for r, _ in pending]] = molecule_screen_fps([g for _, g in pending])
        pending.clear()

    for row, (cid, smi) in enumerate(zip(cids, smiles)):
        mol = parse_smiles(smi)
        if mol is None:
            invalid.append((cid, smi))
            pickles.append(None)
            morgans += _EMPTY
            continue
        pending.append((row, molecule_graph(mol, smi)))
        morgans += morgan_fp(mol)
        pickles.append(mol_to_pickle(mol))  # last: it drops the rings the Morgan fingerprint uses
        if len(pending) == CHUNK:
            fingerprint_pending()
    if pending:
        fingerprint_pending()
    screen_words = screens.view("<u8").T
    valid = np.array([p is not None for p in pickles], dtype=bool)
    rows, counts, morgan_columns = morgan_layout(np.frombuffer(morgans, dtype=np.uint8).reshape(n, FP_BYTES), valid)
    columns = [arrow_array(np.array(cids, dtype=np.int64)), string_array(smiles), binary_array(pickles),
               *[arrow_array(w) for w in screen_words],
               arrow_array(rows), arrow_array(counts), *[arrow_array(c) for c in morgan_columns]]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
