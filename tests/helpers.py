"""Test helpers shared by every suite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def require(part: str, available: bool, why: str) -> None:
    """Skip when ``part`` is absent — unless ``WORKBENCH_REQUIRE_<PART>`` is set (CI), then fail."""
    if available:
        return
    if os.environ.get(f"WORKBENCH_REQUIRE_{part.upper()}"):
        pytest.fail(f"{part} is required here (WORKBENCH_REQUIRE_{part.upper()} is set) but absent: {why}")
    pytest.skip(f"{part} absent: {why}")


def gnu_grep(files: list[Path], *args: str) -> list[bytes]:
    """Ground truth: GNU grep over the concatenated shard lines, sorted."""
    data = b"".join(Path(f).read_bytes() for f in files)
    proc = subprocess.run(["grep", *args], input=data, capture_output=True)
    assert proc.returncode in (0, 1), proc.stderr
    return sorted(proc.stdout.splitlines())


def shard_files(dataset_dir: Path) -> list[Path]:
    import json

    manifest = json.loads((Path(dataset_dir) / "manifest.json").read_text())
    return [Path(dataset_dir) / s["path"] for s in manifest["shards"]]
