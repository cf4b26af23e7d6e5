"""Benchmark charts with matplotlib: a PNG (or SVG) file for ``--plot``, inline SVG for reports."""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLOURS = {"warm": "tab:blue", "cold": "tab:orange", "local": "tab:green", "shared": "tab:purple"}


def new_figure(columns: int = 1, width: float = 4.6, height: float = 3.4) -> tuple["Figure", Any]:
    """A figure of ``columns`` axes side by side (no pyplot state: safe in threads and notebooks)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * columns, height))
    axes = fig.subplots(1, columns)
    return fig, axes


def save(fig: "Figure", path: str) -> None:
    """Write the figure; the format follows the suffix (.png, .svg, .pdf)."""
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def svg(fig: "Figure", title: str) -> str:
    """The figure as an inline ``<svg>`` element (text kept as text, no external references)."""
    import matplotlib

    fig.tight_layout()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "workbench"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML declaration and DOCTYPE (inline in HTML)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    return text.replace("<svg ", f'<svg role="img" aria-label="{_attr(title)}" class="chart" ', 1)


def _attr(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def line_chart(ax: Any, xs: list[float], series: dict[str, list[float]], *, xlabel: str, ylabel: str,
               title: str, ideal: list[float] | None = None) -> None:
    """One line per series (coloured by name when known), an optional dashed ideal line."""
    for name, ys in series.items():
        dashed = name.endswith(" cold")  # "local cold": the storage's colour, a dotted line
        ax.plot(xs, ys, "s:" if dashed else "o-", label=name, color=COLOURS.get(name.split()[0]))
    if ideal is not None:
        ax.plot(xs, ideal, "--", color="grey", label="ideal")
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.set_xticks(xs)
    ax.set_ylim(bottom=0)
    if len(series) > 1 or ideal is not None:
        ax.legend()


def bar_chart(ax: Any, labels: list[str], values: list[float], notes: list[str], *, ylabel: str, title: str,
              colours: list[str] | None = None) -> None:
    """Bars labelled with a note each (e.g. the ratio to the fastest)."""
    bars = ax.bar(labels, values, color=colours or "tab:blue")
    for bar, note in zip(bars, notes):
        ax.annotate(note, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom", fontsize=9)
    ax.set(ylabel=ylabel, title=title)
