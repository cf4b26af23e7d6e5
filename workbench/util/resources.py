"""Files that ship with workbench: image recipes (``containers/``) and job definitions (``jobs/``).

In a checkout they are the repository's top-level folders; an installed wheel carries them as
``workbench/_data/`` (see setup.py).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def shipped_dir(name: str) -> Path:
    """The shipped folder ``name`` (``containers`` or ``jobs``): the checkout's, else the wheel's."""
    checkout = _PACKAGE.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    return _PACKAGE / "_data" / name
