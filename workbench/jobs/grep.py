"""The grep job: the real tool (GNU grep, ripgrep or BusyBox grep) over each shard file."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from workbench.errors import EngineNotFound, JobError, QueryError
from workbench.jobs.base import Job, ShardOutput, ShardTask
from workbench.jobs.proc import run_command

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest

#: engine -> argv prefix. ripgrep always uses its own (Rust) regex syntax, close to grep -E.
ENGINES: dict[str, list[str]] = {
    "gnu": ["grep"],
    "ripgrep": ["rg", "--no-config", "--no-filename", "--no-line-number", "--color=never"],
    "busybox": ["busybox", "grep"],
}


@dataclass
class GrepJob(Job):
    """Lines of each shard matching ``pattern``; the pattern is one argv element (``-e``)."""

    pattern: str
    fixed: bool = False
    extended: bool = False
    ignore_case: bool = False
    engine: str = "gnu"
    count_only: bool = False

    name: ClassVar[str] = "grep"
    executor: ClassVar[str] = "threads"  # type: ignore[misc]

    def __post_init__(self) -> None:
        if "\0" in self.pattern:  # no program argument can hold one
            raise QueryError(f"invalid pattern {self.pattern!r}: it contains a NUL byte")
        if self.engine not in ENGINES:
            raise QueryError(f"unknown grep engine {self.engine!r} (choose from {', '.join(ENGINES)})")
        if self.fixed and self.extended:
            raise QueryError("-F and -E cannot be combined")

    def argv(self, path: str) -> list[str]:
        flags = []
        if self.fixed:
            flags.append("-F")
        if self.extended and self.engine != "ripgrep":
            flags.append("-E")
        if self.ignore_case:
            flags.append("-i")
        if self.count_only:
            flags.append("-c")
        return [*ENGINES[self.engine], *flags, "-e", self.pattern, "--", path]

    def prepare(self, manifest: "Manifest") -> list[str]:
        tool = ENGINES[self.engine][0]
        if shutil.which(tool) is None:
            hint = {"rg": "apt-get install ripgrep", "busybox": "apt-get install busybox-static"}.get(tool, "")
            raise EngineNotFound(f"grep engine {self.engine!r} needs {tool!r}, which is not installed"
                                 + (f" ({hint})" if hint else ""))
        probe = run_command(self.argv("/dev/null"))
        if probe.returncode not in (0, 1):
            raise QueryError(f"invalid pattern {self.pattern!r}: {_first_line(probe.stderr)}")
        return []

    def command(self, task: ShardTask) -> list[str]:
        return self.argv(task.path)

    def run(self, task: ShardTask) -> ShardOutput:
        proc = run_command(self.argv(task.path))
        if proc.returncode not in (0, 1):
            raise JobError(f"{self.engine} grep exited {proc.returncode}: {_first_line(proc.stderr)}")
        return self.parse_output(proc.stdout)


def _first_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "(no message)"
