"""The ``workbench`` command line: a thin layer over the Python API.

Every command module registers itself on ``app``; heavy imports happen inside commands so
``workbench grep`` starts fast. Errors become one ``error: …`` line on stderr and exit 2
(a traceback only with ``--debug``).
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from typer.core import TyperGroup

# `workbench --help` lists commands in the order of the work, grouped in these panels
ORDER = ["datasets", "ingest", "info", "verify",  # Data
         "grep", "run",  # Search
         "index", "substructure", "similar",  # Chemistry
         "images",  # Containers
         "nodes", "place", "cluster", "testbed",  # Cluster
         "bench"]  # Benchmarks


def work_order(order: list[str]) -> type[TyperGroup]:
    """A command group listing ``order`` first (then any others, as registered), not in import order."""

    class WorkOrder(TyperGroup):
        def list_commands(self, ctx: Any) -> list[str]:
            names = super().list_commands(ctx)
            return [n for n in order if n in names] + [n for n in names if n not in order]

    return WorkOrder


app = typer.Typer(
    name="workbench",
    cls=work_order(ORDER),
    help="Shard chemistry datasets and search them with one worker per core, on Dask or Docker.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

STATE = {"debug": False}


def _version(value: bool) -> None:
    if value:
        from workbench import __version__

        print(f"workbench {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    STATE["debug"] = debug


def _register() -> None:
    from workbench.cli import bench, chem, cluster, containers, data, search  # noqa: F401  (they register commands)


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point; returns the exit status."""
    from workbench.errors import WorkbenchError

    _register()
    args = sys.argv[1:] if argv is None else argv
    STATE["debug"] = "--debug" in args
    command = typer.main.get_command(app)
    try:
        with notes_on_stderr():
            rv = command.main(args=args, prog_name="workbench", standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("error: interrupted", file=sys.stderr)
        return 130
    except WorkbenchError as exc:
        if STATE["debug"]:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except _usage_errors() as exc:  # usage errors: one line, exit 2
        if type(exc).__name__ == "NoArgsIsHelpError":
            try:
                print(exc.ctx.get_help())  # type: ignore[attr-defined]
            except BrokenPipeError:
                pass
            return 0
        if STATE["debug"]:
            raise
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `workbench grep … | head`
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # an unexpected failure still gets one line
        if STATE["debug"]:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for a traceback)", file=sys.stderr)
        return 2
    if code == 130:  # typer turns KeyboardInterrupt into exit 130
        print("error: interrupted", file=sys.stderr)
    return code


@contextlib.contextmanager
def notes_on_stderr() -> Iterator[None]:
    """The library's notes (``WorkbenchNote`` warnings) as ``note: …`` lines on stderr, every one."""
    from workbench.errors import WorkbenchNote

    with warnings.catch_warnings():
        show = warnings.showwarning

        def show_note(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, WorkbenchNote):
                print(f"note: {message}", file=sys.stderr)
            else:
                show(message, category, *args, **kwargs)

        warnings.showwarning = show_note
        warnings.simplefilter("always", WorkbenchNote)
        yield


def _usage_errors() -> tuple[type[Exception], ...]:
    """click's usage errors (typer vendors click in newer releases)."""
    import click

    vendored = getattr(typer, "TyperException", None)
    return (click.ClickException,) + ((vendored,) if vendored else ())


def run() -> None:  # pragma: no cover - console script
    sys.exit(main())
