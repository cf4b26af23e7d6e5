"""``util.arrow`` (Arrow without pyarrow's pandas import) and ``util.memory`` (freed memory returned)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from workbench.util.arrow import arrow_array, binary_array, constant_strings, empty_batch, numpy_view, string_array, validity


@pytest.mark.parametrize("dtype", ["int64", "uint64", "uint32", "uint16", "uint8", "int32", "float64"])
def test_numpy_round_trip_shares_memory_and_equals_pyarrow(dtype):
    values = (np.arange(1000) * 7 % 251).astype(dtype)
    array = arrow_array(values)
    assert array.equals(pa.array(values)) and array.type == pa.from_numpy_dtype(np.dtype(dtype))
    view = numpy_view(array.slice(13, 500))
    assert np.shares_memory(view, values) and np.array_equal(view, values[13:513])
    assert np.array_equal(numpy_view(arrow_array(values[::3])), values[::3])  # strided input: copied contiguous
    with pytest.raises(ValueError, match="nulls"):
        numpy_view(pa.array([1, None], pa.int64()))


def test_binary_and_string_arrays_equal_pyarrow_with_nulls_and_slices():
    values = [b"C", None, b"", b"c1ccccc1", None, bytes(range(256))] * 50
    array = binary_array(values)
    array.validate(full=True)
    assert array.equals(pa.array(values, pa.binary())) and array.null_count == 100
    for start in (0, 1, 7, 299):
        assert np.array_equal(validity(array.slice(start)), [v is not None for v in values[start:]])
    assert validity(arrow_array(np.arange(3))).all()
    texts = ["CCO", "", "C[C@H](N)C(=O)O", "Ωmega"]
    assert string_array(texts).equals(pa.array(texts, pa.string()))
    with pytest.raises(UnicodeEncodeError):
        string_array(["\udcff"])  # a lone surrogate: rejected, as pa.array rejects it
    assert constant_strings("\t", 4).to_pylist() == ["\t"] * 4 and constant_strings("", 2).to_pylist() == ["", ""]
    schema = pa.schema([("cid", pa.int64()), ("smiles", pa.string())])
    assert empty_batch(schema).num_rows == 0 and empty_batch(schema).schema == schema


def test_helpers_leave_pandas_unimported():
    pytest.importorskip("pandas")
    code = textwrap.dedent("""\
        import sys, numpy as np, pyarrow as pa, pyarrow.compute as pc
        from workbench.util.arrow import *
        a = arrow_array(np.arange(10)); numpy_view(a); validity(binary_array([b"x", None]))
        s = string_array(["C", "N"]); pc.binary_join_element_wise(s, s, constant_strings("\\t", 2))
        empty_batch(pa.schema([("x", pa.int64())]))
        print("pandas" in sys.modules)
        pa.array([1]); print("pandas" in sys.modules)  # the control: pyarrow's own converter imports it
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")
def test_release_freed_memory_returns_a_fragmented_heap():
    """Freed small objects scattered through the heap stay resident (glibc cannot shrink a heap
    whose top is in use); released, most of their pages go back to the OS."""
    code = textwrap.dedent("""\
        import gc
        from workbench.util.memory import release_freed_memory
        def anon():
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon"))
        before = anon()
        blocks = [bytearray(2000) for _ in range(100_000)]  # ~200 MB of heap (below the mmap threshold)
        kept = blocks[::100]
        del blocks; gc.collect()
        freed = anon()
        release_freed_memory()
        print(before, freed, anon())
        """)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MALLOC_")}
    before, freed, released = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                       check=True, env=env).stdout.split())
    assert freed - before > 150_000  # kB: the freed blocks were still resident
    assert released - before < 40_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
@pytest.mark.parametrize("fixed", [False, True])
def test_unpool_large_blocks_lets_freed_results_leave_the_heap(fixed):
    """Left dynamic, glibc serves blocks below the largest one freed so far from its heap, where
    they stay resident behind a live small object; with the threshold fixed they are mapped, and
    unmapped when freed. The unfixed run is the control."""
    code = textwrap.dedent(f"""\
        from workbench.util.memory import unpool_large_blocks
        def anon():
            return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon"))
        if {fixed}:
            assert unpool_large_blocks()
        large = bytearray(8 << 20)
        del large  # one large block freed: the dynamic threshold rises past 4 MiB
        before = anon()
        blocks, pins = [], []
        for _ in range(20):
            blocks.append(bytearray(4 << 20)); pins.append(bytearray(1024))  # a result, then a small live object (glibc, not pymalloc)
        del blocks
        print(anon() - before)
        """)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MALLOC_")}
    kept = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=env).stdout)
    if fixed:
        assert kept < 10_000  # kB
    else:
        assert kept > 60_000
