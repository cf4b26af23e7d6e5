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


def chromium() -> str:
    """The headless browser that renders reports (Debian's chromium); skip or fail when absent."""
    import shutil

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require("chromium", path is not None, "chromium is not installed (apt-get install chromium)")
    return path  # type: ignore[return-value]


def render_in_chromium(page: Path, screenshot: Path) -> str:
    """Load ``page`` in headless Chromium: returns the DOM after layout, writes a screenshot."""
    browser = chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--user-data-dir={screenshot.parent / 'chromium-profile'}"]
    url = Path(page).resolve().as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    shot = subprocess.run([browser, *flags, "--window-size=1280,2400", f"--screenshot={screenshot}", url],
                          capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr
    return dom.stdout


def external_references(html: str) -> list[str]:
    """Anything in a page that would fetch from elsewhere (scripts, styles, images, fonts, links)."""
    import re

    found = re.findall(r"""(?:src|href)\s*=\s*["']?\s*((?:[a-z]+:)?//[^"' >]*)""", html, flags=re.I)
    found += re.findall(r"""url\(\s*["']?((?!#)[^)"']+)""", html, flags=re.I)
    found += re.findall(r"<link\b[^>]*>|@import\b[^;]*", html, flags=re.I)
    return found


def rendered_report(documents: list[Path], tmp_path: Path, *extra: str) -> tuple[str, list[str]]:
    """``bench report`` of the documents, loaded in headless Chromium: the DOM and each chart's markup.
    Checks that the page fetches nothing and that the browser laid out every chart with a size."""
    import re
    import sys

    page = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "workbench", "bench", "report", *map(str, documents), "-o", str(page),
                           *extra], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert external_references(page.read_text()) == []
    dom = render_in_chromium(page, tmp_path / "report.png")
    body = re.search(r"<body[^>]*>", dom).group(0)  # type: ignore[union-attr]
    assert f'data-charts="{len(documents)}"' in body and f'data-charts-rendered="{len(documents)}"' in body
    charts = re.findall(r'<figure class="chart".*?</figure>', dom, flags=re.S)
    assert len(charts) == len(documents) and all("<svg" in c for c in charts)
    return dom, charts
