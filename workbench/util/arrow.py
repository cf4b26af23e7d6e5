"""numpy <-> Arrow without ``pa.array``, ``Array.to_numpy`` or ``pa.scalar``.

Those three make pyarrow import pandas when it is installed (as in every notebook environment):
about 30 MB of anonymous memory and 0.2 s (seconds on a small board) in each worker process,
paid on the first query of every session. Search and index-build code (in the worker processes)
and result tables (in the client) convert with these helpers instead; each wraps or views the
same memory (no copy) except ``binary_array`` and ``string_array``, which pack Python values into
one buffer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa


def numpy_view(array: pa.Array) -> np.ndarray:
    """A primitive Arrow array without nulls as a read-only numpy view of its buffer."""
    if array.null_count:
        raise ValueError("numpy_view: the array has nulls")
    dtype = _NUMPY[array.type.id]
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


def arrow_array(values: np.ndarray) -> pa.Array:
    """A 1-d numpy array of integers or floats as an Arrow array sharing its memory."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def validity(array: pa.Array) -> np.ndarray:
    """Boolean mask of the array's non-null rows."""
    bitmap = array.buffers()[0]
    if bitmap is None or not array.null_count:
        return np.ones(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[array.offset:array.offset + len(array)].astype(bool)


def binary_array(values: Sequence[bytes | None], kind: pa.DataType = pa.binary()) -> pa.Array:
    """Python ``bytes`` (None: null) as an Arrow ``binary`` or ``string`` array (32-bit offsets)."""
    data = b"".join(v for v in values if v is not None)
    if len(data) >= 2**31:
        raise ValueError(f"binary_array: {len(data):,} bytes do not fit 32-bit offsets")
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(np.fromiter((len(v) if v is not None else 0 for v in values), dtype=np.int32, count=len(values)),
              out=offsets[1:])
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    bitmap = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
    return pa.Array.from_buffers(kind, len(values), [bitmap, pa.py_buffer(offsets), pa.py_buffer(data)],
                                 null_count=int(nulls.sum()))


def string_array(values: Sequence[str]) -> pa.Array:
    """Python strings as an Arrow ``string`` array (UTF-8; a lone surrogate raises, as in ``pa.array``)."""
    return binary_array([v.encode("utf-8") for v in values], pa.string())


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A record batch of ``schema`` with no rows."""
    return pa.RecordBatch.from_arrays([pa.nulls(0, field.type) for field in schema], schema=schema)


def constant_strings(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as an Arrow ``string`` array (a separator for ``pyarrow.compute``)."""
    data = value.encode()
    offsets = np.arange(n + 1, dtype=np.int32) * len(data)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)])


_NUMPY = {pa.int8().id: np.dtype(np.int8), pa.int16().id: np.dtype(np.int16), pa.int32().id: np.dtype(np.int32),
          pa.int64().id: np.dtype(np.int64), pa.uint8().id: np.dtype(np.uint8), pa.uint16().id: np.dtype(np.uint16),
          pa.uint32().id: np.dtype(np.uint32), pa.uint64().id: np.dtype(np.uint64),
          pa.float32().id: np.dtype(np.float32), pa.float64().id: np.dtype(np.float64)}
