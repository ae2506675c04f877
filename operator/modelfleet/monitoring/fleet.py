"""Per-LLMDeployment gauges on the operator's /metrics, read from spec and status at scrape time.

What dashboards and alerts compare vLLM's numbers with: the autoscaler's target and bounds, vLLM's
``--max-num-seqs``, the planner's capacity, desired and ready replicas, conditions. Like
kube-state-metrics for the CRD, but built in: nothing to configure, no extra API calls (it reads the
operator's in-memory registry, which the watch keeps current). :func:`families` is pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry
from pydantic import ValidationError

from modelfleet import api
from modelfleet.monitoring import names as n

LABELS = [n.NAMESPACE, n.LLM]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def families(llms: Iterable[Mapping[str, Any]]) -> list[GaugeMetricFamily]:
    """The gauges for these LLMDeployment bodies (as the API returns them, camelCase)."""
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
    for body in llms:
        try:
            llm = api.LLMDeployment.model_validate(body)
        except ValidationError:
            continue  # the CRD refuses such objects; the reconciler reports the odd one that slips through
        key = [llm.namespace, llm.name]
        spec, status = llm.spec, body.get("status") or {}
        info.add_metric([*key, llm.served_name, spec.engine.image or ""], 1.0)
        capacity = status.get("capacity") or {}
        want = status.get("desiredReplicas", None if spec.autoscaling.enabled else spec.replicas)
        values = [(replicas, status.get("replicas", 0)), (ready, status.get("readyReplicas", 0)), (desired, want),
                  (seqs, spec.engine.max_num_seqs), (planned, capacity.get("maxConcurrentSequences")),
                  (kv, capacity.get("kvCacheTokens"))]
        if spec.autoscaling.enabled:
            auto = spec.autoscaling
            values += [(lo, auto.min_replicas), (hi, auto.max_replicas), (target, auto.target_queue_depth)]
        for fam, value in values:
            if (v := _num(value)) is not None:
                fam.add_metric(key, v)
        for c in status.get("conditions") or []:
            if c.get("type"):
                cond.add_metric([*key, str(c["type"]), str(c.get("reason") or "")],
                                1.0 if c.get("status") == "True" else 0.0)
    return [info, replicas, ready, desired, lo, hi, target, seqs, planned, kv, cond]


class FleetCollector(Collector):
    """A prometheus_client collector over a callable returning the current LLMDeployment bodies."""

    def __init__(self, bodies: Callable[[], Iterable[Mapping[str, Any]]]) -> None:
        self.bodies = bodies

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Called by prometheus_client on every scrape."""
        yield from families(self.bodies())


def register(bodies: Callable[[], Iterable[Mapping[str, Any]]], registry: CollectorRegistry = REGISTRY) -> None:
    """Serve the fleet gauges on the operator's /metrics (prometheus_client's default registry)."""
    registry.register(FleetCollector(bodies))
