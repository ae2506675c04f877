"""Draw the dashboard's panels with matplotlib from range queries against a real Prometheus.

There is no Grafana here: this renders the same queries (``modelfleet.monitoring.panels.layout``) in
the dashboard's grid (24 columns, rows in order) so a person can see what the dashboard shows on e2e
data. Panels reading kube-state-metrics are drawn empty with a note (no kube-state-metrics in e2e).

    render(prometheus_url, Scope("ns", "name", "30s"), start, end, Path("docs/monitoring-dashboard.png"))
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, PercentFormatter

from modelfleet.monitoring.panels import Panel, Scope, layout, scale_annotation

PANEL_ROWS = 5  # grid rows per panel; a row title takes 1


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """``data.result`` of a range query."""
    args = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{url.rstrip('/')}/api/v1/query_range?{args}", timeout=10) as resp:
        body = json.loads(resp.read().decode())
    if body.get("status") != "success":
        raise ValueError(f"Prometheus refused {expr!r}: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def legend(template: str, labels: dict[str, str]) -> str:
    """Grafana's ``{{label}}`` legend syntax."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), template)


def annotation_marks(result: list[dict[str, Any]], start: float, step: float) -> list[float]:
    """Seconds after ``start`` where an annotation query starts being true (Grafana draws one event per run)."""
    marks = []
    for series in result:
        last = None
        for t, _ in series["values"]:
            if last is None or float(t) - last > step * 1.5:
                marks.append(float(t) - start)
            last = float(t)
    return marks


def _layout_cells() -> list[tuple[str, Panel | None, int, int, int]]:
    """(row title, panel or None for a row header, grid row, x, width) in the dashboard's order."""
    cells: list[tuple[str, Panel | None, int, int, int]] = []
    y = 0
    for row in layout(Scope()):
        cells.append((row.title, None, y, 0, 24))
        y += 1
        x = 0
        for p in row.panels:
            if x + p.width > 24:
                x, y = 0, y + PANEL_ROWS
            cells.append((row.title, p, y, x, p.width))
            x += p.width
        y += PANEL_ROWS
    return cells


def render(url: str, scope: Scope, start: float, end: float, out: Path, step: float = 2.0) -> dict[str, int]:
    """Draw every panel to ``out`` (PNG); returns panel title -> series drawn."""
    panels = {p.title: p for row in layout(scope) for p in row.panels}
    cells = _layout_cells()
    total_rows = max(y for _, _, y, _, _ in cells) + PANEL_ROWS
    fig = plt.figure(figsize=(24, total_rows * 0.72))
    grid = fig.add_gridspec(total_rows, 24, hspace=2.2, wspace=3.5, top=0.95, bottom=0.02)
    t0 = dt.datetime.fromtimestamp(start, dt.UTC)
    marks = annotation_marks(query_range(url, scale_annotation(scope).expr, start, end, step), start, step)
    drawn: dict[str, int] = {}
    for row_title, generic, y, x, width in cells:
        if generic is None:
            ax = fig.add_subplot(grid[y, :])
            ax.axis("off")
            ax.text(0, 0.2, row_title.replace("$namespace", scope.namespace).replace("$deployment", scope.deployment),
                    fontsize=15, fontweight="bold", transform=ax.transAxes)
            continue
        panel = panels[generic.title]
        ax = fig.add_subplot(grid[y:y + PANEL_ROWS - 1, x:x + width])
        ax.set_title(panel.title, fontsize=10, loc="left")
        count = 0
        right = ax.twinx() if any(q.right_axis for q in panel.queries) else None
        colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
        for q in panel.queries:
            if q.source == "kube-state-metrics":
                ax.text(0.5, 0.5, "kube-state-metrics: not in e2e\n(checked with promtool)", ha="center",
                        va="center", transform=ax.transAxes, fontsize=9, color="gray")
                continue
            target = right if q.right_axis and right is not None else ax
            for series in query_range(url, q.expr, start, end, step):
                xs = [float(t) - start for t, _ in series["values"]]
                ys = [float(v) for _, v in series["values"]]
                target.plot(xs, ys, linewidth=1.3, color=next(colors), linestyle=":" if q.right_axis else "-",
                            label=legend(q.legend, series["metric"])[:48])
                count += 1
        if right is not None:
            right.tick_params(labelsize=7)
            handles = [h for a in (ax, right) for h in a.get_legend_handles_labels()[0]]
            ax.legend(handles=handles, fontsize=6.5, loc="upper left", ncol=2)
        for level in panel.thresholds:
            ax.axhline(level, linestyle="--", linewidth=0.9, color="red" if level >= 1 else "orange")
        if "LLMDeployment" in row_title:
            for m in marks:
                ax.axvline(m, color="#8F3BB8", linewidth=0.8, alpha=0.6)
        if panel.unit == "percentunit":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        elif panel.unit == "s":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}s"))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: (t0 + dt.timedelta(seconds=v)).strftime("%H:%M:%S")))
        ax.set_xlim(0, end - start)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if count and right is None:
            ax.legend(fontsize=6.5, loc="upper left", ncol=2 if count > 4 else 1)
        drawn[panel.title] = count
    fig.suptitle("modelfleet dashboard — rendered with matplotlib from e2e Prometheus data (not Grafana): "
                 f"{scope.namespace}/{scope.deployment}, vLLM simulators under load, "
                 f"{t0:%Y-%m-%d %H:%M} UTC; purple lines: desired replicas changed", fontsize=13)
    fig.savefig(out, dpi=70, bbox_inches="tight")
    plt.close(fig)
    return drawn
