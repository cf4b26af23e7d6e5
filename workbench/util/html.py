"""Small HTML pieces shared by notebook displays (``_repr_html_``) and benchmark reports."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any


def esc(value: Any) -> str:
    """Text for HTML (``None`` shows as an empty cell)."""
    return "" if value is None else html.escape(str(value), quote=True)


def table(header: Sequence[str] | None, rows: Iterable[Sequence[Any]], *, caption: str | None = None,
          css_class: str = "workbench") -> str:
    """A ``<table>``; numbers are right-aligned, cells already formatted as text are shown as they are."""
    parts = [f'<table class="{esc(css_class)}">']
    if caption:
        parts.append(f"<caption>{esc(caption)}</caption>")
    if header:
        parts.append("<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead>")
    parts.append("<tbody>")
    for row in rows:
        cells = []
        for value in row:
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
            cells.append(f'<td style="text-align:right">{esc(text)}</td>' if numeric else f"<td>{esc(text)}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def key_values(pairs: Iterable[tuple[str, Any]], *, caption: str | None = None) -> str:
    """A two-column table of names and values."""
    return table(None, ([f"{k}", v] for k, v in pairs), caption=caption)
