"""Where workbench keeps what it downloads (wheels, wheelhouses), and pip as the downloader."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workbench.errors import WorkbenchError


def cache_dir() -> Path:
    """``$WORKBENCH_CACHE``, else ``$XDG_CACHE_HOME/workbench``, else ``~/.cache/workbench``."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "workbench"
    path = Path(os.environ.get("WORKBENCH_CACHE") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def pip(*args: str) -> None:
    """Run this Python's pip quietly; a failure is one ``WorkbenchError`` with pip's last words."""
    proc = subprocess.run([sys.executable, "-m", "pip", *args, "--quiet"], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-2:]
        raise WorkbenchError(f"pip {args[0]} failed: {' / '.join(tail) or f'exit status {proc.returncode}'}")
