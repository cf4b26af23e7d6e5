"""Whether we run inside a Jupyter kernel (rich HTML displays, progress in the notebook)."""

from __future__ import annotations

import sys


def in_notebook() -> bool:
    """True inside a Jupyter (ipykernel) kernel; never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    if ipython is None or "ipykernel" not in sys.modules:
        return False
    shell = ipython.get_ipython()  # type: ignore[attr-defined]
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
