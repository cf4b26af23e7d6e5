"""The grep job: the real tool (GNU grep, ripgrep or BusyBox grep) over each shard file.

``engine="auto"`` (the default) is GNU grep, except for a fixed-string search (``-F``) on a shard
recorded as pure ASCII with an ASCII pattern, where ripgrep prints the very same lines two to three
times faster: a line holds the string or not, with no regex dialect or locale in between (``-i``
folds ASCII case in both). ``engine="gnu"`` always runs GNU grep.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from workbench.errors import EngineNotFound, JobError, QueryError
from workbench.jobs.base import Job, ShardOutput, ShardTask
from workbench.jobs.proc import run_command

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest, ShardInfo

#: engine -> argv prefix. ripgrep always uses its own (Rust) regex syntax, close to grep -E.
ENGINES: dict[str, list[str]] = {
    "gnu": ["grep"],
    "ripgrep": ["rg", "--no-config", "--no-filename", "--no-line-number", "--color=never"],
    "busybox": ["busybox", "grep"],
}
CHOICES = ("auto", *ENGINES)


@dataclass
class GrepJob(Job):
    """Lines of each shard matching ``pattern``; the pattern is one argv element (``-e``)."""

    pattern: str
    fixed: bool = False
    extended: bool = False
    ignore_case: bool = False
    engine: str = "auto"
    count_only: bool = False

    name: ClassVar[str] = "grep"
    executor: ClassVar[str] = "threads"  # type: ignore[misc]

    def __post_init__(self) -> None:
        if "\0" in self.pattern:  # no program argument can hold one
            raise QueryError(f"invalid pattern {self.pattern!r}: it contains a NUL byte")
        if self.engine not in CHOICES:
            raise QueryError(f"unknown grep engine {self.engine!r} (choose from {', '.join(CHOICES)})")
        if self.fixed and self.extended:
            raise QueryError("-F and -E cannot be combined")

    @property
    def image_engine(self) -> str:
        """The engine whose worker image runs this job (``auto`` needs GNU grep and ripgrep: gnu-grep's)."""
        return "gnu" if self.engine == "auto" else self.engine

    def engine_for(self, shard: "ShardInfo | None") -> str:
        """The engine that runs on ``shard``: ``auto`` resolves per shard (see the module docstring)."""
        if self.engine != "auto":
            return self.engine
        literal = self.fixed and self.pattern.isascii() and "\n" not in self.pattern and self.pattern != ""
        if literal and shard is not None and shard.ascii and shutil.which("rg"):
            return "ripgrep"
        return "gnu"

    def argv(self, path: str, shard: "ShardInfo | None" = None) -> list[str]:
        engine = self.engine_for(shard)
        flags = []
        if self.fixed:
            flags.append("-F")
        if self.extended and engine != "ripgrep":
            flags.append("-E")
        if self.ignore_case:
            flags.append("-i")
        if self.count_only:
            flags.append("-c")
        return [*ENGINES[engine], *flags, "-e", self.pattern, "--", path]

    def prepare(self, manifest: "Manifest") -> list[str]:
        tool = ENGINES[self.engine_for(None)][0]
        if shutil.which(tool) is None:
            hint = {"rg": "apt-get install ripgrep", "busybox": "apt-get install busybox-static"}.get(tool, "")
            raise EngineNotFound(f"grep engine {self.engine!r} needs {tool!r}, which is not installed"
                                 + (f" ({hint})" if hint else ""))
        probe = run_command(self.argv("/dev/null"))
        if probe.returncode not in (0, 1):
            raise QueryError(f"invalid pattern {self.pattern!r}: {_first_line(probe.stderr)}")
        return []

    def command(self, task: ShardTask) -> list[str]:
        return self.argv(task.path, task.shard)

    def run(self, task: ShardTask) -> ShardOutput:
        proc = run_command(self.argv(task.path, task.shard))
        if proc.returncode not in (0, 1):
            raise JobError(f"{self.engine_for(task.shard)} grep exited {proc.returncode}: {_first_line(proc.stderr)}")
        return self.parse_output(proc.stdout)


def _first_line(stderr: bytes) -> str:
    text = stderr.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else "(no message)"
