"""``workbench bench report RUNS.json... -o report.html``: one self-contained HTML page.

Each benchmark document (``bench scaling --json``, ``bench scaling --cluster … --json``,
``bench images --json``) becomes a section: what its figures mean, a chart (inline SVG drawn by
matplotlib, text kept as text), the table, every raw run, and where it ran (machine, cluster
nodes and their health). The page needs nothing else: no external stylesheet, script, font or
image. A two-line inline script only marks, for automated checks, how many charts the browser
laid out (``<body data-charts-rendered=N>``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.util.html import esc, key_values, table

KINDS = {"scaling": "Scaling with workers", "nodes": "Scaling with nodes", "images": "Container images"}

MEANING = {
    "scaling": (
        "Each point: one untimed warm-up run, then timed repeats; the table shows medians. "
        "<b>wall s</b>: wall-clock seconds of a whole run (start-up of the tasks included). "
        "<b>MB/s</b>: the dataset's bytes ÷ wall. <b>speedup</b>: wall at the smallest worker count ÷ wall here "
        "(same cache state); <b>efficiency</b>: speedup ÷ (workers ÷ smallest count), 100% is perfect scaling. "
        "<b>CPU s</b>: user+system CPU of this process and its grep subprocesses. "
        "<b>warm</b>: the repeats follow the warm-up, the dataset is in the page cache (memory); "
        "<b>cold</b>: before every repeat the dataset's files are dropped from the page cache "
        "(posix_fadvise DONTNEED), so the run reads them from the storage device. "
        "<b>cached at start</b>: share of the dataset's bytes in the page cache when the run started (mincore)."),
    "nodes": (
        "One Dask cluster; a point with k nodes runs the shard tasks only on the workers of the cluster file's "
        "first k nodes. <b>local</b>: every node holds every shard on its own disk (data_dir); <b>shared</b>: every "
        "node reads the shards from the directory they all see (shared_dir: NFS on real hardware; on the testbed "
        "a directory of this machine). <b>MB/s</b>: the dataset's bytes ÷ the median wall time of a run, measured "
        "on the coordinator (scheduling and result transfer included); <b>MB/s per node</b>: MB/s ÷ nodes, flat "
        "when adding nodes adds throughput, falling when something shared (network, NFS server, CPU of the "
        "coordinator) is the limit; <b>speedup</b>/<b>efficiency</b>: against the smallest node count of the same "
        "storage and cache state; <b>busiest node</b>: the largest share of the bytes one node read. "
        "<b>warm</b>/<b>cold</b> as for worker scaling, dropped on every node."),
    "images": (
        "The same job on the same shards in each worker image, and without a container (<b>local</b>). "
        "One untimed warm-up per variant, then timed repeats; medians. <b>× fastest</b>: wall ÷ the fastest "
        "variant's wall. <b>image MB</b>: the image's size on the engine. <b>start-up s</b>: create, start, run "
        "<code>true</code>, exit and remove one container (median of three)."),
}

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:70em;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table.workbench{border-collapse:collapse;margin:.6em 0 1em;font-size:14px}
table.workbench td,table.workbench th{border:1px solid #ddd;padding:.2em .55em;text-align:left;vertical-align:top}
table.workbench th{background:#f4f4f4} table.workbench caption{text-align:left;font-weight:600;padding:.2em 0}
figure.chart{margin:1em 0} figure.chart svg{max-width:100%;height:auto}
p.meaning{background:#f8f8fb;border-left:3px solid #99c;padding:.5em .8em;font-size:14px}
.muted{color:#666;font-size:13px} details{margin:.4em 0 1em} nav li{margin:.1em 0}
"""

LAYOUT_CHECK = """<script>
document.body.dataset.chartsRendered = Array.from(document.querySelectorAll("figure.chart svg"))
  .filter(s => { const r = s.getBoundingClientRect(); return r.width > 0 && r.height > 0; }).length;
</script>"""


def load_results(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Read benchmark documents; anything else is a ``WorkbenchError`` naming the file."""
    if not paths:
        raise WorkbenchError("give at least one benchmark JSON file")
    docs = []
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise WorkbenchError(f"{path}: no such file") from None
        except (OSError, ValueError) as exc:
            raise WorkbenchError(f"{path}: not a JSON file ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list) or not doc["rows"]:
            raise WorkbenchError(f"{path}: not a benchmark result (no rows; write one with `bench scaling --json` "
                                 f"or `bench images --json`)")
        doc.setdefault("kind", guess_kind(doc["rows"][0]))
        if doc["kind"] not in KINDS:
            raise WorkbenchError(f"{path}: unknown benchmark kind {doc['kind']!r}")
        doc["source"] = str(path)
        docs.append(doc)
    return docs


def guess_kind(row: dict[str, Any]) -> str:
    """Documents written before ``kind`` existed: tell them by their rows."""
    return "nodes" if "storage" in row else "images" if "variant" in row else "scaling"


def chart(doc: dict[str, Any]) -> str:
    """The benchmark's chart as inline SVG."""
    from workbench.bench import images, nodes, scaling
    from workbench.bench.charts import svg

    title = f"{doc.get('job', '')} {doc.get('query', '')!r}"
    figure = {"scaling": scaling.figure, "nodes": nodes.figure, "images": images.figure}[doc["kind"]]
    return svg(figure(doc["rows"], title), f"{KINDS[doc['kind']]}: {title}")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def rows_table(doc: dict[str, Any]) -> str:
    rows, kind = doc["rows"], doc["kind"]
    if kind == "scaling":
        return table(["workers", "cache", "wall s", "MB/s", "records/s", "speedup", "efficiency", "CPU s",
                      "cached at start", "hits"],
                     [[r["workers"], r.get("cache", "warm"), _num(r["wall_s"]), _num(r["mb_per_s"], 1),
                       _num(r["records_per_s"], 0), _num(r["speedup"], 2), _pct(r["efficiency"]), _num(r["cpu_s"], 2),
                       _pct(r.get("resident")), r["hits"]] for r in rows])
    if kind == "nodes":
        return table(["storage", "nodes", "workers", "cache", "wall s", "MB/s", "MB/s per node", "speedup",
                      "efficiency", "busiest node", "each node MB/s", "cached at start", "hits"],
                     [[r["storage"], r["nodes"], r["workers"], r.get("cache", "warm"), _num(r["wall_s"]),
                       _num(r["mb_per_s"], 1), _num(r["mb_per_s_node"], 1), _num(r["speedup"], 2), _pct(r["efficiency"]),
                       _pct(r.get("busiest_share")),
                       ", ".join(f"{n} {v:,.1f}" for n, v in (r.get("node_mb_per_s") or {}).items()),
                       _pct(r.get("resident")), r["hits"]] for r in rows])
    return table(["variant", "image", "engine", "wall s", "MB/s", "× fastest", "image MB", "start-up s", "hits"],
                 [[r["variant"], r["image"], r["engine"], _num(r["wall_s"]), _num(r["mb_per_s"], 1), _num(r["ratio"], 2),
                   _num(r.get("size_mb"), 1), _num(r.get("startup_s")), r["hits"]] for r in rows])


def runs_table(doc: dict[str, Any]) -> str:
    labels = {"scaling": ["workers"], "nodes": ["storage", "nodes"], "images": ["variant"]}[doc["kind"]]
    return table([*labels, "repeat", "cache", "cached at start", "wall s", "MB/s", "hits", "shards"],
                 [[*(r.get(k) for k in labels), r.get("repeat"), r.get("cache", "warm"), _pct(r.get("resident")),
                   _num(r.get("seconds")), _num(r.get("mb_per_s"), 1), r.get("hits"), r.get("shards_done")]
                  for r in doc.get("runs", [])])


def machine_table(machine: dict[str, Any]) -> str:
    memory = machine.get("memory")
    facts = key_values([("host", machine.get("hostname")), ("CPU", machine.get("cpu")), ("arch", machine.get("arch")),
                        ("cores", machine.get("cores")), ("memory", f"{memory / 1e9:,.1f} GB" if memory else None),
                        ("kernel", machine.get("kernel")), ("OS", machine.get("os"))], caption="machine")
    versions = key_values(sorted((machine.get("versions") or {}).items()), caption="versions")
    return f'<div style="display:flex;gap:2em;flex-wrap:wrap">{facts}{versions}</div>'


def cluster_table(nodes: list[dict[str, Any]], health_end: dict[str, Any] | None) -> str:
    def gb(n: Any) -> str:
        return "" if n is None else f"{n / 1e9:,.1f} G"

    def temp(t: Any) -> str:
        return "-" if t is None else f"{t:.1f}"

    end = health_end or {}
    return table(["node", "host", "arch", "cores", "memory", "°C start", "°C end", "throttled", "load",
                  "disk free", "shared", "python", "workbench", "error"],
                 [[n["name"], n.get("host"), n.get("arch"), n.get("cores"), gb(n.get("memory")),
                   temp(n.get("temperature")), temp((end.get(n["name"]) or {}).get("temperature")),
                   ", ".join(n.get("throttle") or []) or ("no" if n.get("throttled") is not None else "-"),
                   "" if not n.get("load") else f"{n['load'][0]:.2f}", gb(n.get("data_dir_free")),
                   " ".join(x for x in (n.get("shared_state"), n.get("shared_fs")) if x) or "",
                   n.get("python"), n.get("workbench"), n.get("error")] for n in nodes],
                 caption="cluster nodes (`workbench nodes` at the start; °C end: at the end)")


def section(i: int, doc: dict[str, Any]) -> str:
    kind = doc["kind"]
    what = f"{doc.get('job', '?')} {doc.get('query', '')!r}"
    where = doc.get("backend") or doc.get("mode") or ""
    machine = doc.get("machine") or {}
    facts = [("dataset", doc.get("dataset")), ("job", what), ("backend", where), ("created", doc.get("created")),
             ("file", doc.get("source"))]
    if doc.get("docker"):
        facts.append(("Docker engine", " ".join(str(v) for v in doc["docker"].values() if v)))
    parts = [f'<section class="benchmark" id="bench-{i}" data-kind="{esc(kind)}">',
             f"<h2>{i}. {esc(KINDS[kind])}: {esc(what)}</h2>",
             key_values(facts),
             f'<p class="meaning">{MEANING[kind]}</p>',
             f'<figure class="chart" id="chart-{i}">{chart(doc)}<figcaption class="muted">{esc(KINDS[kind])}, '
             f"{esc(what)}</figcaption></figure>",
             rows_table(doc),
             f"<details><summary>every timed run ({len(doc.get('runs', []))})</summary>{runs_table(doc)}</details>"]
    if machine:
        parts.append(f"<h3>Where it ran</h3>{machine_table(machine)}")
    if doc.get("cluster"):
        parts.append(cluster_table(doc["cluster"], doc.get("health_end")))
    parts.append("</section>")
    return "\n".join(parts)


def render(docs: list[dict[str, Any]], title: str = "workbench benchmark report") -> str:
    """The whole page."""
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    nav = "".join(f'<li><a href="#bench-{i}">{esc(KINDS[d["kind"]])}: {esc(d.get("job", ""))} '
                  f'{esc(repr(d.get("query", "")))}</a></li>' for i, d in enumerate(docs, 1))
    body = "\n".join(section(i, d) for i, d in enumerate(docs, 1))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
            f'<body data-charts="{len(docs)}"><h1>{esc(title)}</h1>'
            f'<p class="muted">{len(docs)} benchmark{"s" if len(docs) != 1 else ""}, report written {created}</p>'
            f"<nav><ol>{nav}</ol></nav>\n{body}\n{LAYOUT_CHECK}</body></html>\n")


def write_report(paths: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
                 title: str = "workbench benchmark report") -> int:
    """Render the documents at ``paths`` into ``output``; returns the number of benchmarks."""
    docs = load_results(paths)
    Path(output).write_text(render(docs, title))
    return len(docs)
