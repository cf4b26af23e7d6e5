"""The library never prints: it returns notes (or warns, or logs) and the CLI prints them."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

PACKAGE = Path(workbench.__file__).parent
#: Programs of their own, whose stdout/stderr is their interface: the CLI and the container worker.
PROGRAMS = {"cli", "containers/worker.py", "__main__.py"}


def _library_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py"))
            if not any(str(p.relative_to(PACKAGE)).startswith(prefix) for prefix in PROGRAMS)]


def test_no_print_or_std_stream_in_library_code():
    """Source code only: scripts the library sends to remote nodes are string constants, not calls."""
    found = []
    for path in _library_files():
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Name) and node.id == "print":  # a call, or `log=print` as a default
                name = "print"
            elif isinstance(node, ast.Attribute) and node.attr in ("stderr", "stdout") and \
                    isinstance(node.value, ast.Name) and node.value.id == "sys":
                name = f"sys.{node.attr}"
            if name:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {name}")
    assert found == []


def test_image_build_progress_goes_to_logging_by_default(caplog):
    import inspect
    import logging

    from workbench.containers import bootstrap, build

    for fn in (build.wheelhouse, build.build_image, bootstrap.bootstrap_base, bootstrap.bootstrap_debian,
               bootstrap.bootstrap_busybox):
        log = inspect.signature(fn).parameters["log"].default
        with caplog.at_level(logging.INFO):
            log("hello")
        assert caplog.records[-1].name == fn.__module__ and caplog.records[-1].message == "hello"
