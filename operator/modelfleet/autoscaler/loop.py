"""One autoscaler cycle over all autoscaled LLMDeployments; I/O only through injected objects.

The caller (handlers.py's timer) gathers :class:`Target` s from its caches and calls::

    outcomes = await run_cycle(targets, source, actuator, now=time.time())

``source.fetch`` (blocking) runs in a worker thread: ONE Prometheus query per cycle for all
targets. For each target the pure policy decides; then, only when something changed:

* ``actuator.scale`` sets the child Deployment's replicas (never the LLMDeployment's spec),
  preceded on scale-down by ``set_deletion_costs`` when the actuator implements
  :class:`DeletionCostSetter` (idle pods go first);
* ``actuator.event`` posts ``ScaledUp`` / ``ScaledDown`` with the numbers, and a Warning when
  metrics become unavailable or scaling becomes limited;
* ``actuator.write_status`` writes ``status.autoscaler``, ``status.desiredReplicas`` and the
  ``MetricsAvailable`` / ``ScalingLimited`` conditions - only when the desired count, the
  policy state (stabilization recommendations, last scale time) or a condition's status/reason
  changed, not every cycle; so ``status.autoscaler`` shows the last decision that changed
  something, with its numbers. The live
  numbers go to the operator's ``/metrics`` instead (:class:`AutoscalerMetrics`).

A failure for one target (an API error in the actuator) is logged and reported in its Outcome;
the other targets proceed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from modelfleet.api import AutoscalerStatus, AutoscalingSpec
from modelfleet.autoscaler.metrics import DeploymentKey, MetricsError, MetricsSource, Signals
from modelfleet.autoscaler.policy import Decision, Observation, PolicyState, ReplicaCapacity, decide, iso

log = logging.getLogger(__name__)

#: Metrics older than this (seconds) are stale: hold. Three missed 30 s scrapes.
DEFAULT_MAX_AGE_SECONDS = 90.0
#: Kubernetes' bounds for controller.kubernetes.io/pod-deletion-cost (an int32).
_COST_MAX = 2**31 - 1


@dataclass(frozen=True)
class Target:
    """One autoscaled LLMDeployment as the caller sees it this cycle."""

    namespace: str
    name: str
    spec: AutoscalingSpec
    max_num_seqs: int
    replicas: int  # the child Deployment's spec.replicas now
    ready_replicas: int
    unschedulable: int = 0  # pods Pending with PodScheduled=False/Unschedulable
    not_created: int = 0  # replicas the ReplicaSet cannot create (ReplicaFailure: quota, PodSecurity...)
    not_created_reason: str = ""  # the API's words for it
    unready_seconds: float | None = None  # age of the oldest pod that is neither ready nor unschedulable
    autoscaler_status: Mapping[str, Any] | None = None  # status.autoscaler as stored (camelCase)
    conditions: Sequence[Mapping[str, Any]] = ()  # status.conditions as stored
    pod_urls: Mapping[str, str] = field(default_factory=dict)  # ready pod -> metrics URL (scrape only)
    kv_cache_tokens: int | None = None  # per replica, from status.capacity (the planner)
    startup_seconds: float | None = None  # observed pod creation -> Ready (median over ready pods)

    @property
    def key(self) -> DeploymentKey:
        """(namespace, name)."""
        return (self.namespace, self.name)


@dataclass(frozen=True)
class Outcome:
    """What the cycle did for one target."""

    namespace: str
    name: str
    decision: Decision
    scaled: bool
    status_written: bool
    autoscaler: dict[str, Any]
    conditions: list[dict[str, Any]]
    deletion_costs: dict[str, int] = field(default_factory=dict)
    error: str | None = None


class Actuator(Protocol):
    """The Kubernetes side, implemented by autoscaler/runner.py (KubeActuator, over kube/)."""

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set the child Deployment's replicas of LLMDeployment ``name``."""
        ...

    async def write_status(self, namespace: str, name: str, autoscaler: dict[str, Any],
                           desired_replicas: int, conditions: list[dict[str, Any]]) -> None:
        """Patch status.autoscaler, status.desiredReplicas and merge these conditions by type."""
        ...

    async def event(self, namespace: str, name: str, type: str, reason: str, message: str) -> None:
        """Post an Event on the LLMDeployment (type is Normal or Warning)."""
        ...


@runtime_checkable
class DeletionCostSetter(Protocol):
    """Optional: annotate pods with controller.kubernetes.io/pod-deletion-cost before a scale-down."""

    async def set_deletion_costs(self, namespace: str, name: str, costs: dict[str, int]) -> None:
        """``costs`` maps pod name to cost; lower costs are deleted first."""
        ...


def deletion_costs(pod_loads: Mapping[str, float]) -> dict[str, int]:
    """Pod-deletion-cost from per-pod running requests: idle pods (0) are removed first."""
    return {pod: max(0, min(_COST_MAX, math.ceil(load))) for pod, load in pod_loads.items()
            if math.isfinite(load)}


class AutoscalerMetrics:
    """The autoscaler's live numbers on the operator's /metrics."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        labels = ["namespace", "name"]
        self.queue = Gauge("modelfleet_autoscaler_queue_depth", "Waiting requests seen (sum over ready pods)",
                           labels, registry=registry)
        self.running = Gauge("modelfleet_autoscaler_running", "Running requests seen", labels, registry=registry)
        self.desired = Gauge("modelfleet_autoscaler_desired_replicas", "Replicas the autoscaler wants", labels,
                             registry=registry)
        self.available = Gauge("modelfleet_autoscaler_metrics_available", "1 when the decision had metrics",
                               labels, registry=registry)
        self.cycle = Histogram("modelfleet_autoscaler_cycle_seconds", "Duration of one autoscaler cycle",
                               registry=registry, buckets=(.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.fetch = Histogram("modelfleet_autoscaler_metrics_fetch_seconds", "Duration of the metrics query",
                               registry=registry, buckets=(.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self.scales = Counter("modelfleet_autoscaler_scale_events", "Scale operations", [*labels, "direction"],
                              registry=registry)
        self.errors = Counter("modelfleet_autoscaler_metrics_errors", "Failed metrics fetches", ["source"],
                              registry=registry)

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted LLMDeployment's series."""
        for g in (self.queue, self.running, self.desired, self.available):
            with contextlib.suppress(KeyError):
                g.remove(namespace, name)
        for direction in ("up", "down"):
            with contextlib.suppress(KeyError):
                self.scales.remove(namespace, name, direction)


_default_metrics: AutoscalerMetrics | None = None


def default_metrics() -> AutoscalerMetrics:
    """The process-wide metrics in prometheus_client's default registry (created once)."""
    global _default_metrics
    if _default_metrics is None:
        _default_metrics = AutoscalerMetrics()
    return _default_metrics


def observe(target: Target, signals: Signals | None, source_error: str | None, max_age: float) -> Observation:
    """The policy's input for one target from the fetched signals."""
    # Pods that cannot even be created block a scale-up exactly as unschedulable ones do.
    base: dict[str, Any] = dict(ready_replicas=target.ready_replicas, replicas=target.replicas,
                                unschedulable=target.unschedulable + target.not_created,
                                unready_seconds=target.unready_seconds)
    if source_error is not None:
        return Observation(None, None, stale=True, stale_reason=f"metrics source failed: {source_error}", **base)
    if signals is None:
        return Observation(None, None, pods_reporting=0, **base)
    age = signals.age_seconds
    stale = age is not None and age > max_age
    reason = f"oldest sample {age:.0f}s old > {max_age:.0f}s" if stale and age is not None else ""
    if signals.waiting is None and signals.errors:
        stale, reason = True, "scrape failed: " + "; ".join(signals.errors)[:300]
    elif signals.waiting is None and signals.dropped:
        stale, reason = True, "unusable samples: " + "; ".join(signals.dropped)[:300]
    return Observation(signals.waiting, signals.running, signals.kv_cache_usage, pods_reporting=signals.pods,
                       stale=stale, stale_reason=reason, **base)


def _condition(ctype: str, ok: bool, reason: str, message: str, old: Sequence[Mapping[str, Any]],
               now: float) -> dict[str, Any]:
    status = "True" if ok else "False"
    prev = next((c for c in old if c.get("type") == ctype), None)
    since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else None
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since or iso(now)}


def conditions_for(d: Decision, obs: Observation, spec: AutoscalingSpec, old: Sequence[Mapping[str, Any]],
                   now: float, target: Target | None = None) -> list[dict[str, Any]]:
    """MetricsAvailable and ScalingLimited for a decision."""
    if d.metrics_available:
        m = _condition("MetricsAvailable", True, "MetricsFound",
                       f"{obs.pods_reporting} pod(s) reporting vllm:num_requests_waiting", old, now)
    else:
        why = ("SourceFailed" if obs.stale_reason.startswith(("metrics source", "scrape")) else
               "UnusableSamples" if obs.stale_reason.startswith("unusable") else
               "Stale" if obs.stale else "NoSeries")
        m = _condition("MetricsAvailable", False, why, d.reason.removeprefix("hold: "), old, now)
    if d.limited and target is not None and target.not_created:
        s = _condition("ScalingLimited", True, "PodsNotCreated",
                       f"{target.not_created} pod(s) cannot be created: {target.not_created_reason}"[:1000], old, now)
    elif d.limited:
        why = "InsufficientGPUs" if obs.unschedulable else "AtMaxReplicas"
        s = _condition("ScalingLimited", True, why, d.limited_reason, old, now)
    else:
        s = _condition("ScalingLimited", False, "WithinLimits",
                       f"between minReplicas {spec.min_replicas} and maxReplicas {spec.max_replicas}", old, now)
    return [m, s]


def _status_key(a: Mapping[str, Any], conds: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
    """What must change for a status write: the replica decision, the policy state, a condition's
    status or reason. The action word, numbers and messages alone do not (they go to /metrics)."""
    return (a.get("desiredReplicas"), a.get("recommendations") or [],
            a.get("lastScaleTime"), sorted((c.get("type"), c.get("status"), c.get("reason")) for c in conds
                                           if c.get("type") in ("MetricsAvailable", "ScalingLimited")))


async def _act(target: Target, d: Decision, obs: Observation, signals: Signals | None, store: Actuator,
               now: float, m: AutoscalerMetrics) -> Outcome:
    key = target.key
    conds = conditions_for(d, obs, target.spec, target.conditions, now, target)
    autoscaler = AutoscalerStatus(
        queue_depth=obs.waiting, running=obs.running, kv_cache_usage=obs.kv_cache_usage,
        desired_replicas=d.desired_replicas, decision=d.action, reason=d.reason, last_decision_time=iso(now),
        recommendations=d.state.to_status()["recommendations"],
        last_scale_time=iso(d.state.last_scale_time) if d.state.last_scale_time is not None else None,
    ).model_dump(mode="json", by_alias=True)
    old_conds = [c for c in target.conditions if c.get("type") in ("MetricsAvailable", "ScalingLimited")]
    must_write = _status_key(autoscaler, conds) != _status_key(target.autoscaler_status or {}, old_conds)
    costs: dict[str, int] = {}
    scaled = written = False
    try:
        if d.desired_replicas != target.replicas:
            if d.desired_replicas < target.replicas and signals and signals.pod_running:
                costs = deletion_costs(signals.pod_running)
                if isinstance(store, DeletionCostSetter):
                    await store.set_deletion_costs(*key, costs)
            await store.scale(*key, d.desired_replicas)
            scaled = True
            up = d.desired_replicas > target.replicas
            m.scales.labels(*key, "up" if up else "down").inc()
            await store.event(*key, "Normal", "ScaledUp" if up else "ScaledDown", d.reason)
        old = {c.get("type"): c.get("status") for c in target.conditions}
        if not d.metrics_available and old.get("MetricsAvailable") != "False":
            await store.event(*key, "Warning", "MetricsUnavailable", d.reason)
        if d.limited and old.get("ScalingLimited") != "True":
            limited = next(c for c in conds if c["type"] == "ScalingLimited")
            await store.event(*key, "Warning", "ScalingLimited", limited["message"])
        if must_write or scaled:
            await store.write_status(*key, autoscaler, d.desired_replicas, conds)
            written = True
    except Exception as e:  # one object's API trouble must not stop the others
        log.warning("autoscaler: acting on %s/%s failed: %s", *key, e)
        return Outcome(*key, d, scaled, written, autoscaler, conds, costs, f"{type(e).__name__}: {e}")
    return Outcome(*key, d, scaled, written, autoscaler, conds, costs)


async def run_cycle(targets: Sequence[Target], source: MetricsSource, store: Actuator, now: float, *,
                    metrics: AutoscalerMetrics | None = None, max_age: float = DEFAULT_MAX_AGE_SECONDS,
                    concurrency: int = 16) -> list[Outcome]:
    """Fetch once, decide for every enabled target, act on what changed; one Outcome per target."""
    m = metrics or default_metrics()
    t0 = time.perf_counter()
    targets = [t for t in targets if t.spec.enabled]
    error: str | None = None
    signals: dict[DeploymentKey, Signals] = {}
    try:
        with m.fetch.time():
            signals = await asyncio.to_thread(source.fetch, {t.key: t.pod_urls for t in targets})
    except MetricsError as e:
        error = str(e)
        m.errors.labels(type(source).__name__).inc()
        log.warning("autoscaler: metrics unavailable, holding every deployment: %s", e)
    sem = asyncio.Semaphore(concurrency)
    failed: list[str] = []

    async def one(target: Target) -> Outcome | None:
        sig = signals.get(target.key)
        obs = observe(target, sig, error, max_age)
        state = PolicyState.from_status(target.autoscaler_status)
        capacity = ReplicaCapacity(target.kv_cache_tokens, target.startup_seconds)
        try:
            d = decide(target.spec, obs, state, now, target.max_num_seqs, capacity=capacity)
        except (ArithmeticError, ValueError) as e:  # a value no source should let through: hold this one
            log.exception("autoscaler: deciding for %s/%s failed; holding its replicas", *target.key)
            failed.append(f"{target.namespace}/{target.name}: {type(e).__name__}: {e}")
            return None
        m.desired.labels(*target.key).set(d.desired_replicas)
        m.available.labels(*target.key).set(1 if d.metrics_available else 0)
        if obs.waiting is not None:
            m.queue.labels(*target.key).set(obs.waiting)
        if obs.running is not None:
            m.running.labels(*target.key).set(obs.running)
        async with sem:
            return await _act(target, d, obs, sig, store, now, m)

    outcomes = [o for o in await asyncio.gather(*(one(t) for t in targets)) if o is not None]
    m.cycle.observe(time.perf_counter() - t0)
    if failed:
        log.warning("autoscaler: no decision for %s", "; ".join(failed))
    return outcomes
