"""The command job: any program run on each shard file; its stdout lines are the records.

``{shard}`` in the argv is replaced by the shard's path (appended when absent). A reduce step
combines the per-shard outputs: ``cat`` (stream lines as they come), ``sort`` (sorted lines at the
end), ``sum`` (add up the first number of every line, like ``wc -l``'s) or ``sum-by-key`` (lines
``KEY<TAB>NUMBER`` summed per key). Definitions can live in TOML
files (see ``jobs/``)::

    command = ["awk", "-F", "\\t", "length($2) > 80", "{shard}"]
    reduce = "cat"
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from workbench.errors import EngineNotFound, JobError, WorkbenchError
from workbench.jobs.base import Job, ShardOutput, ShardTask
from workbench.jobs.proc import run_command
from workbench.util.resources import shipped_dir

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest

REDUCERS = ("cat", "sort", "sum", "sum-by-key")


@dataclass
class CommandJob(Job):
    argv: list[str] = field(default_factory=list)
    reduce: str = "cat"

    name: ClassVar[str] = "command"
    columns: ClassVar[tuple[tuple[str, str], ...]] = (("line", "string"),)

    def __post_init__(self) -> None:
        if not self.argv:
            raise WorkbenchError("the command job needs a command to run")
        if self.reduce not in REDUCERS:
            raise WorkbenchError(f"unknown reduce {self.reduce!r} (choose from {', '.join(REDUCERS)})")
        bad = next((a for a in self.argv if "\0" in a), None)
        if bad is not None:  # no program argument can hold one
            raise WorkbenchError(f"invalid command argument {bad!r}: it contains a NUL byte")

    def prepare(self, manifest: "Manifest") -> list[str]:
        if shutil.which(self.argv[0]) is None:
            raise EngineNotFound(f"command {self.argv[0]!r} is not installed")
        return []

    def command(self, task: ShardTask) -> list[str]:
        if any("{shard}" in a for a in self.argv):
            return [a.replace("{shard}", task.path) for a in self.argv]
        return [*self.argv, task.path]

    def run(self, task: ShardTask) -> ShardOutput:
        proc = run_command(self.command(task))
        if proc.returncode != 0:
            message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise JobError(f"{self.argv[0]} exited {proc.returncode}: {message[0] if message else '(no message)'}")
        return self.parse_output(proc.stdout)

    def parse_output(self, stdout: bytes) -> ShardOutput:
        if stdout and not stdout.endswith(b"\n"):
            stdout += b"\n"
        return ShardOutput(stdout, stdout.count(b"\n"))

    @property
    def final_step(self) -> bool:
        return self.reduce != "cat"

    def finish_payloads(self, payloads: list[bytes]) -> bytes:
        if self.reduce == "cat":
            return b"".join(payloads)
        lines = [line for p in payloads for line in p.splitlines()]
        if self.reduce == "sort":
            return b"".join(line + b"\n" for line in sorted(lines))
        totals: dict[bytes, float] = {}
        try:
            for line in filter(bytes.strip, lines):
                key, value = line.rsplit(b"\t", 1) if self.reduce == "sum-by-key" else (b"", line.split()[0])
                totals[key] = totals.get(key, 0.0) + float(value)
        except ValueError as exc:
            raise JobError(f"reduce {self.reduce!r} cannot read a number from the output: {exc}") from None
        if self.reduce == "sum":
            return _number(totals.get(b"", 0.0)) + b"\n"
        return b"".join(k + b"\t" + _number(v) + b"\n" for k, v in sorted(totals.items()))


def _number(value: float) -> bytes:
    return str(int(value) if value.is_integer() else value).encode()


def definition_path(name: str | Path) -> Path:
    """A job definition file: ``name`` as a path, else a definition shipped with workbench
    (``element-census`` or ``element-census.toml``: see ``workbench run --help``)."""
    path = Path(name)
    if path.exists() or path.parent != Path("."):
        return path
    shipped = shipped_dir("jobs") / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
    return shipped if shipped.is_file() else path


def shipped_definitions() -> list[str]:
    """Names of the job definitions shipped with workbench."""
    return sorted(p.stem for p in shipped_dir("jobs").glob("*.toml"))


def load_definition(name: str | Path) -> CommandJob:
    """A command job from a TOML definition (a path or a shipped name): ``command = [...]``, optional ``reduce``."""
    path = definition_path(name)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"job definition {str(name)!r} does not exist "
                             f"(shipped: {', '.join(shipped_definitions()) or 'none'})") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"job definition {str(path)!r} is not valid TOML: {exc}") from None
    command = data.get("command")
    if not isinstance(command, list) or not all(isinstance(a, str) for a in command):
        raise WorkbenchError(f"job definition {str(path)!r} needs command = [\"program\", \"arg\", …]")
    return CommandJob(argv=command, reduce=data.get("reduce", "cat"))
