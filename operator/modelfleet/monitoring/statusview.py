"""`modelfleet status`, the pure part: live numbers + LLMDeployment objects -> rows -> a table.

Live numbers come from Prometheus (one batched query, :func:`prometheus_query`) or, without
Prometheus, from the operator's own /metrics (:func:`parse_operator_metrics`: queue and running
as the autoscaler last saw them; no KV usage or latency there). Desired/ready replicas and the last
decision come from each LLMDeployment's status.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from modelfleet.monitoring import names as n
from modelfleet.monitoring.panels import by_llm

Key = tuple[str, str]  # (namespace, LLMDeployment name)


@dataclass(frozen=True)
class Live:
    """What the metrics say about one LLMDeployment now (None: not known)."""

    waiting: float | None = None
    running: float | None = None
    kv_cache_usage: float | None = None  # the fullest pod
    ttft_p95: float | None = None
    pods: int | None = None


def prometheus_query(window: str = "5m") -> str:
    """Every live number of every LLMDeployment in one PromQL query, tagged by a ``signal`` label."""
    sel = f'{{{n.POD_LLM}!=""}}'
    by = f"{n.NAMESPACE}, {n.LLM}"

    def tag(expr: str, signal: str) -> str:
        return f'label_replace({expr}, "signal", "{signal}", "", "")'

    return " or ".join([
        tag(f"sum by ({by}) ({by_llm(n.VLLM_WAITING + sel)})", "waiting"),
        tag(f"sum by ({by}) ({by_llm(n.VLLM_RUNNING + sel)})", "running"),
        tag(f"max by ({by}) ({by_llm(n.VLLM_KV_USAGE + sel)})", "kv"),
        tag(f"count by ({by}) ({by_llm(n.VLLM_WAITING + sel)})", "pods"),
        tag(f"histogram_quantile(0.95, sum by (le, {by}) ({by_llm(f'rate({n.VLLM_TTFT}_bucket{sel}[{window}])')}))",
            "ttft_p95"),
    ])


_FIELDS = {"waiting": "waiting", "running": "running", "kv": "kv_cache_usage", "ttft_p95": "ttft_p95", "pods": "pods"}


def parse_prometheus(result: Sequence[Mapping[str, Any]]) -> dict[Key, Live]:
    """``data.result`` of :func:`prometheus_query` -> live numbers by LLMDeployment (NaN: unknown)."""
    acc: dict[Key, dict[str, Any]] = {}
    for item in result:
        labels, value = item.get("metric") or {}, item.get("value") or [0, "NaN"]
        signal = _FIELDS.get(str(labels.get("signal")))
        v = float(value[1])
        if signal is None or math.isnan(v):
            continue
        acc.setdefault((str(labels.get(n.NAMESPACE, "")), str(labels.get(n.LLM, ""))), {})[signal] = (
            int(v) if signal == "pods" else v)
    return {key: Live(**vals) for key, vals in acc.items()}


def parse_operator_metrics(text: str) -> dict[Key, Live]:
    """The operator's /metrics text -> the autoscaler's last queue and running numbers by LLMDeployment."""
    acc: dict[Key, dict[str, Any]] = {}
    wanted = {n.AUTOSCALER_QUEUE: "waiting", n.AUTOSCALER_RUNNING: "running"}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name in wanted and not math.isnan(s.value):
                key = (s.labels.get(n.NAMESPACE, ""), s.labels.get(n.LLM, ""))
                acc.setdefault(key, {})[wanted[s.name]] = s.value
    return {key: Live(**vals) for key, vals in acc.items()}


@dataclass(frozen=True)
class Row:
    """One line of the table (JSON keys too)."""

    namespace: str
    name: str
    phase: str
    ready: int
    desired: int | None
    min_replicas: int | None
    max_replicas: int | None
    running: float | None
    waiting: float | None
    target_waiting: float | None  # targetQueueDepth x ready replicas
    kv_cache_usage: float | None
    ttft_p95_seconds: float | None
    decision: str
    decision_reason: str
    decision_age_seconds: float | None


def _age(stamp: str | None, now: float) -> float | None:
    if not stamp:
        return None
    try:
        return max(0.0, now - dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def rows(llms: Iterable[Mapping[str, Any]], live: Mapping[Key, Live], now: float) -> list[Row]:
    """One row per LLMDeployment body (as the API returns it), sorted by namespace and name."""
    out = []
    for body in llms:
        meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        auto, decision = spec.get("autoscaling") or {}, status.get("autoscaler") or {}
        ready = int(status.get("readyReplicas") or 0)
        enabled = bool(auto.get("enabled"))
        target = auto.get("targetQueueDepth") if enabled else None
        lv = live.get(key, Live())
        out.append(Row(
            namespace=key[0], name=key[1], phase=str(status.get("phase") or "-"), ready=ready,
            desired=status.get("desiredReplicas", spec.get("replicas")),
            min_replicas=auto.get("minReplicas") if enabled else None,
            max_replicas=auto.get("maxReplicas") if enabled else None,
            running=lv.running, waiting=lv.waiting,
            target_waiting=float(target) * ready if isinstance(target, int | float) else None,
            kv_cache_usage=lv.kv_cache_usage, ttft_p95_seconds=lv.ttft_p95,
            decision=str(decision.get("decision") or "-"), decision_reason=str(decision.get("reason") or ""),
            decision_age_seconds=_age(decision.get("lastDecisionTime"), now),
        ))
    return sorted(out, key=lambda r: (r.namespace, r.name))


def _num(v: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if v is None else fmt.format(v)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


COLUMNS = ("NAMESPACE", "NAME", "PHASE", "READY/DESIRED", "MIN-MAX", "RUNNING", "WAITING/TARGET", "KV",
           "TTFT P95", "LAST DECISION")


def cells(r: Row) -> tuple[str, ...]:
    """The table cells of one row."""
    bounds = "-" if r.min_replicas is None else f"{r.min_replicas}-{r.max_replicas}"
    waiting = _num(r.waiting) + ("" if r.target_waiting is None else f"/{r.target_waiting:.0f}")
    decision = r.decision if r.decision == "-" else f"{r.decision} {_duration(r.decision_age_seconds)} ago"
    return (r.namespace, r.name, r.phase, f"{r.ready}/{_num(r.desired, '{}')}", bounds, _num(r.running), waiting,
            _num(None if r.kv_cache_usage is None else r.kv_cache_usage * 100, "{:.0f}%"),
            _num(r.ttft_p95_seconds, "{:.2f}s"), decision)


def table(table_rows: Sequence[Row], wide: bool = False) -> str:
    """Aligned columns, kubectl style; ``wide`` adds the decision's reason."""
    head = (*COLUMNS, "REASON") if wide else COLUMNS
    body = [(*cells(r), r.decision_reason) if wide else cells(r) for r in table_rows]
    widths = [max(len(str(c)) for c in col) for col in zip(head, *body, strict=True)]
    lines = ["   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in (head, *body)]
    return "\n".join(lines) + "\n"


def as_json(table_rows: Sequence[Row]) -> str:
    """The rows as a JSON list (numbers unformatted)."""
    return json.dumps([asdict(r) for r in table_rows], indent=2) + "\n"
