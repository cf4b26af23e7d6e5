"""Progress of a run: a rich bar on a terminal's stderr, an HTML bar updated in place in Jupyter.

Both show shards done/total, MB/s, hits and the time left, and the Dask dashboard link once the
backend has one (``dashboard`` is asked again until it answers; a terminal prints it once, above the bar).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from workbench.runner.stats import RunStats
from workbench.util.html import esc


class Progress:
    """Shown while shards finish: ``update()`` after each, ``close()`` at the end."""

    def __init__(self, stats: RunStats, dashboard: Callable[[], str | None] = lambda: None):
        self.stats, self.start = stats, time.perf_counter()
        self._dashboard = dashboard
        self.link: str | None = None

    def dashboard(self) -> str | None:
        """The dashboard link, asked for until the backend has started and knows it."""
        if self.link is None:
            self.link = self._dashboard()
        return self.link

    def rate(self) -> str:
        s = self.stats
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        return f"{s.bytes / 1e6 / elapsed:,.0f} MB/s  {s.hits:,} hits"

    def update(self) -> None: ...

    def close(self) -> None: ...


class TerminalProgress(Progress):
    """A transient rich progress bar on stderr."""

    def __init__(self, stats: RunStats, dashboard: Callable[[], str | None] = lambda: None):
        super().__init__(stats, dashboard)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress

        console = Console(stderr=True)
        self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                console=console, transient=True)
        self.task = self.bar.add_task(stats.job, total=stats.shards_total, rate="")
        self.bar.start()

    def update(self) -> None:
        if self.link is None and self.dashboard():
            self.bar.console.print(f"dask dashboard: {self.link}", highlight=False)
        self.bar.update(self.task, advance=1, rate=self.rate())

    def close(self) -> None:
        self.bar.stop()


class NotebookProgress(Progress):
    """An HTML ``<progress>`` bar in the notebook's output, updated in place (at most 5 times a second)."""

    def __init__(self, stats: RunStats, dashboard: Callable[[], str | None] = lambda: None):
        super().__init__(stats, dashboard)
        from IPython.display import HTML, display

        self._html = HTML
        self.handle: Any = display(HTML(self.render()), display_id=True)
        self.shown = 0.0

    def render(self, done: bool = False) -> str:
        s = self.stats
        elapsed = time.perf_counter() - self.start
        finished = len(s.shards)
        left = ""
        if not done and finished:
            left = f" · {elapsed / finished * (s.shards_total - finished):.0f} s left"
        state = f"done in {elapsed:.2f} s" if done else f"{elapsed:.1f} s{left}"
        url = self.dashboard()
        link = f' · <a href="{esc(url)}" target="_blank">Dask dashboard</a>' if url else ""
        return (f'<div class="workbench-progress"><progress value="{finished}" max="{max(s.shards_total, 1)}" '
                f'style="width:16em;vertical-align:middle"></progress> '
                f"<b>{esc(s.job)}</b> {finished}/{s.shards_total} shards · {esc(self.rate())} · {state}{link}</div>")

    def update(self) -> None:
        now = time.perf_counter()
        if now - self.shown >= 0.2:
            self.shown = now
            self.handle.update(self._html(self.render()))

    def close(self) -> None:
        self.handle.update(self._html(self.render(done=True)))


def progress_for(stats: RunStats, dashboard: Callable[[], str | None] = lambda: None) -> Progress:
    """The progress display that suits where we run: Jupyter or a terminal."""
    from workbench.util.notebook import in_notebook

    return NotebookProgress(stats, dashboard) if in_notebook() else TerminalProgress(stats, dashboard)
