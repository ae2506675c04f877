"""Per-LLMDeployment gauges on the operator's /metrics, read from spec and status at scrape time.

What dashboards and alerts compare vLLM's numbers with: the autoscaler's target and bounds, vLLM's
``--max-num-seqs``, the planner's capacity, desired and ready replicas, conditions. Like
kube-state-metrics for the CRD, but built in: nothing to configure, no extra API calls (it reads the
operator's in-memory registry, which the watch keeps current). :func:`families` is pure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
from pydantic import ValidationError

from modelfleet import api
from modelfleet.monitoring import names as n

LABELS = [n.NAMESPACE, n.LLM]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class SpecValues:
    """What the gauges need from one spec (parsed through the API models, so defaults are the API's)."""

    served_name: str
    image: str
    replicas: int
    max_num_seqs: int
    autoscaling: tuple[int, int, float] | None  # (min, max, targetQueueDepth) when enabled


def spec_values(body: Mapping[str, Any]) -> SpecValues | None:
    """Parse one body's spec; None for an object the API would have refused."""
    try:
        llm = api.LLMDeployment.model_validate(body)
    except ValidationError:
        return None  # the CRD refuses such objects; the reconciler reports the odd one that slips through
    auto = llm.spec.autoscaling
    return SpecValues(llm.served_name, llm.spec.engine.image or "", llm.spec.replicas, llm.spec.engine.max_num_seqs,
                      (auto.min_replicas, auto.max_replicas, auto.target_queue_depth) if auto.enabled else None)


Cache = dict[tuple[str, str], tuple[tuple[Any, Any], SpecValues | None]]


def families(llms: Iterable[Mapping[str, Any]], cache: Cache | None = None) -> list[GaugeMetricFamily]:
    """The gauges for these LLMDeployment bodies (as the API returns them, camelCase).

    ``cache`` keeps parsed specs by (uid, generation) between scrapes: parsing is most of the cost
    (~0.2 ms an object), and a spec only changes with its generation. Entries of objects not seen are dropped.
    """
    def gauge(name: str, doc: str, extra: list[str] | None = None) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=LABELS + (extra or []))

    info = gauge(n.LLM_INFO, "1 per LLMDeployment, with its served model name and image", ["served_name", "image"])
    replicas = gauge(n.LLM_REPLICAS, "status.replicas: pods of the child Deployment")
    ready = gauge(n.LLM_READY_REPLICAS, "status.readyReplicas")
    desired = gauge(n.LLM_DESIRED_REPLICAS, "status.desiredReplicas (the autoscaler's choice, or spec.replicas)")
    lo = gauge(n.LLM_MIN_REPLICAS, "spec.autoscaling.minReplicas (autoscaled LLMDeployments only)")
    hi = gauge(n.LLM_MAX_REPLICAS, "spec.autoscaling.maxReplicas (autoscaled LLMDeployments only)")
    target = gauge(n.LLM_TARGET_QUEUE, "spec.autoscaling.targetQueueDepth: waiting requests per ready replica")
    seqs = gauge(n.LLM_MAX_NUM_SEQS, "spec.engine.maxNumSeqs: vLLM's cap on running requests per replica")
    planned = gauge(n.LLM_PLANNED_SEQS, "status.capacity.maxConcurrentSequences: the planner's sequences at "
                                        "maxModelLen per replica")
    kv = gauge(n.LLM_KV_TOKENS, "status.capacity.kvCacheTokens: the planner's KV-cache tokens per replica")
    cond = gauge(n.LLM_CONDITION, "1 when the condition is True, 0 otherwise", ["type", "reason"])
    seen: Cache = {}
    for body in llms:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name", "")))
        version = (meta.get("uid"), meta.get("generation"))
        hit = (cache or {}).get(key)
        spec = hit[1] if hit is not None and hit[0] == version and version != (None, None) else spec_values(body)
        seen[key] = (version, spec)
        if spec is None:
            continue
        labels = list(key)
        status = body.get("status") or {}
        info.add_metric([*labels, spec.served_name, spec.image], 1.0)
        capacity = status.get("capacity") or {}
        want = status.get("desiredReplicas", None if spec.autoscaling else spec.replicas)
        values = [(replicas, status.get("replicas", 0)), (ready, status.get("readyReplicas", 0)), (desired, want),
                  (seqs, spec.max_num_seqs), (planned, capacity.get("maxConcurrentSequences")),
                  (kv, capacity.get("kvCacheTokens"))]
        if spec.autoscaling:
            values += [(lo, spec.autoscaling[0]), (hi, spec.autoscaling[1]), (target, spec.autoscaling[2])]
        for fam, value in values:
            if (v := _num(value)) is not None:
                fam.add_metric(labels, v)
        for c in status.get("conditions") or []:
            if c.get("type"):
                cond.add_metric([*labels, str(c["type"]), str(c.get("reason") or "")],
                                1.0 if c.get("status") == "True" else 0.0)
    if cache is not None:
        cache.clear()
        cache.update(seen)
    return [info, replicas, ready, desired, lo, hi, target, seqs, planned, kv, cond]


class FleetCollector(Collector):
    """A prometheus_client collector over a callable returning the current LLMDeployment bodies."""

    def __init__(self, bodies: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self.bodies = bodies
        self._cache: Cache = {}
        self._lock = threading.Lock()  # prometheus_client serves scrapes from several threads

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Called by prometheus_client on every scrape."""
        with self._lock:
            found = families(self.bodies(), self._cache)
        yield from found


def register(bodies: Callable[[], Iterable[Mapping[str, Any]]], registry: CollectorRegistry = REGISTRY) -> None:
    """Serve the fleet gauges on the operator's /metrics (prometheus_client's default registry)."""
    registry.register(FleetCollector(bodies))
