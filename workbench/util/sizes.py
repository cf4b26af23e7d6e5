"""Byte sizes written by people (``64MB``, ``512kB``, ``1GiB``): one parser, Dask's."""

from __future__ import annotations

from workbench.errors import WorkbenchError


def parse_bytes(text: str | int) -> int:
    """``'64MB'`` -> 64_000_000 (``dask.utils.parse_bytes``); a bad size is a ``WorkbenchError``."""
    if isinstance(text, int):
        return text
    from dask.utils import parse_bytes as dask_parse_bytes

    try:
        return int(dask_parse_bytes(text.strip()))
    except (ValueError, TypeError):
        raise WorkbenchError(f"invalid size {text!r} (examples: 64MB, 512kB, 1GiB)") from None
