"""Rows, the table, and the comparison at equal p95 TTFT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelfleet.autoscaler.simulate.fleet import RunResult

BASELINES = ("hpa", "keda", "static")


def row(result: RunResult, oracle_hours: float, replica_hours: float | None = None) -> dict[str, Any]:
    """One JSON row for a run (replica_hours overrides the run's own, for the oracle's analytic floor)."""
    hours = result.replica_seconds / 3600.0 if replica_hours is None else replica_hours
    return {
        "autoscaler": result.autoscaler,
        "setting": result.setting,
        "p50_ttft_s": round(result.percentile(0.50), 3),
        "p95_ttft_s": round(result.percentile(0.95), 3),
        "p99_ttft_s": round(result.percentile(0.99), 3),
        "replica_hours": round(hours, 3),
        "vs_oracle": round(hours / oracle_hours, 3) if oracle_hours > 0 else None,
        "scale_events": result.scale_events,
        "max_replicas": result.max_replicas,
        "requests": result.requests,
        "completed": result.completed,
    }


def table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of the rows, in the order given."""
    head = ("| autoscaler | setting | p50 TTFT s | p95 TTFT s | p99 TTFT s | replica-h | x oracle | scales "
            "| max pods | completed |")
    lines = [head, "|" + "|".join("---" for _ in range(head.count("|") - 1)) + "|"]
    for r in rows:
        ratio = "-" if r["vs_oracle"] is None else f"{r['vs_oracle']:.2f}"
        lines.append(
            f"| {r['autoscaler']} | {r['setting']} | {r['p50_ttft_s']:.2f} | {r['p95_ttft_s']:.2f} "
            f"| {r['p99_ttft_s']:.2f} | {r['replica_hours']:.2f} | {ratio} | {r['scale_events']} "
            f"| {r['max_replicas']} | {r['completed']}/{r['requests']} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Verdict:
    """modelfleet against the cheapest baseline point that is no slower (by p95 TTFT)."""

    ours: dict[str, Any]
    best: dict[str, Any] | None
    fastest: dict[str, Any] | None

    @property
    def saving(self) -> float | None:
        """Fraction of replica-hours saved against ``best`` (negative: modelfleet costs more)."""
        if self.best is None or not self.best["replica_hours"]:
            return None
        return 1.0 - float(self.ours["replica_hours"]) / float(self.best["replica_hours"])

    def text(self) -> str:
        """One sentence."""
        o = self.ours
        head = f"modelfleet ({o['setting']}): p95 TTFT {o['p95_ttft_s']:.2f} s, {o['replica_hours']:.2f} replica-h"
        if self.best is None:
            f = self.fastest
            tail = "" if f is None else (f"; the fastest baseline point, {f['autoscaler']} {f['setting']}, has p95 "
                                          f"{f['p95_ttft_s']:.2f} s at {f['replica_hours']:.2f} replica-h")
            return f"{head}: no baseline point is as fast{tail}"
        b, saving = self.best, self.saving or 0.0
        return (f"{head}; cheapest baseline point no slower: {b['autoscaler']} {b['setting']} (p95 "
                f"{b['p95_ttft_s']:.2f} s, {b['replica_hours']:.2f} replica-h): modelfleet uses "
                f"{abs(saving):.0%} {'fewer' if saving >= 0 else 'more'} replica-hours")


def verdicts(rows: Sequence[dict[str, Any]]) -> list[Verdict]:
    """One verdict per modelfleet row."""
    base = [r for r in rows if r["autoscaler"] in BASELINES]
    out = []
    for ours in (r for r in rows if r["autoscaler"] == "modelfleet"):
        no_slower = [r for r in base if r["p95_ttft_s"] <= ours["p95_ttft_s"]]
        best = min(no_slower, key=lambda r: (r["replica_hours"], r["p95_ttft_s"])) if no_slower else None
        fastest = min(base, key=lambda r: (r["p95_ttft_s"], r["replica_hours"])) if base else None
        out.append(Verdict(ours, best, fastest))
    return out
