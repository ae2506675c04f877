"""The baselines as their users configure them: the Kubernetes HPA, KEDA, a static fleet.

**HPA** (autoscaling/v2) on a ``Pods`` metric from prometheus-adapter, per pod
``vllm:num_requests_waiting`` or waiting + running, target type ``AverageValue``. Its
replica calculator (kubernetes/pkg/controller/podautoscaler/replica_calculator.go, documented at
https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/#algorithm-details):
``desired = ceil(readyPods x average / target)``, nothing when ``|average / target - 1| <= 0.1``;
pods without metrics yet (starting) count as 0 on a scale-up and as exactly the target on a
scale-down, and a recount that flips the direction holds. Then the controller's default
``behavior``: no scale-up stabilisation, scale-up limited to max(+100 %, +4 pods) per 15 s,
scale-down to the highest recommendation of the last 300 s, at most -100 % per 15 s. The
controller syncs every 15 s (``--horizontal-pod-autoscaler-sync-period``).

**KEDA** Prometheus scaler (https://keda.sh/docs/latest/scalers/prometheus/): a query summed over
the deployment (``sum(vllm:num_requests_waiting{...})`` or waiting + running) and a
``threshold``. KEDA hands the HPA an ``External`` metric with target type ``AverageValue`` =
threshold (https://keda.sh/docs/latest/concepts/scaling-deployments/), for which the HPA computes
``desired = ceil(total / threshold)`` against the current replicas with the same tolerance and
behaviour. The HPA asks KEDA's metrics server every 15 s and, by default (no
``useCachedMetrics``), KEDA queries Prometheus on each request; ``pollingInterval`` (30 s) and
``cooldownPeriod`` (300 s) govern only activation and scaling to and from zero, which a fleet
with ``minReplicaCount >= 1`` never does.

**Static**: a fixed number of replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from modelfleet.autoscaler.simulate.fleet import FleetView

HPA_SYNC_SECONDS = 15.0
HPA_TOLERANCE = 0.1
HPA_DOWN_WINDOW_SECONDS = 300.0
HPA_UP_PERCENT = 100.0
HPA_UP_PODS = 4
HPA_POLICY_PERIOD_SECONDS = 15.0

METRICS = ("waiting", "waiting+running")


def _value(metric: str, waiting: float, running: float) -> float:
    return waiting + running if metric == "waiting+running" else waiting


def pods_metric_replicas(values: list[float], missing: int, current: int, target: float,
                         tolerance: float = HPA_TOLERANCE) -> int:
    """The HPA replica calculator for a Pods metric with an AverageValue target.

    ``values``: per-pod metric of the pods that report; ``missing``: pods without metrics.
    """
    if not values:
        return current
    ratio = sum(values) / len(values) / target
    if missing == 0:
        if abs(1.0 - ratio) <= tolerance:
            return current
        return math.ceil(ratio * len(values))
    filled = values + ([0.0] * missing if ratio > 1.0 else [target] * missing)
    new_ratio = sum(filled) / len(filled) / target
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new = math.ceil(new_ratio * len(filled))
    if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
        return current
    return new


def external_average_replicas(total: float, current: int, target: float, tolerance: float = HPA_TOLERANCE) -> int:
    """The HPA replica calculator for an External metric with an AverageValue target (what KEDA uses)."""
    if current > 0 and abs(1.0 - total / (target * current)) <= tolerance:
        return current
    return math.ceil(total / target)


@dataclass
class HpaBehavior:
    """The HPA controller's default behaviour around a raw recommendation (stabilisation, rate limits)."""

    min_replicas: int
    max_replicas: int
    down_window: float = HPA_DOWN_WINDOW_SECONDS
    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_ups: list[tuple[float, int]] = field(default_factory=list)  # (time, pods added)

    def apply(self, raw: int, current: int, now: float) -> int:
        """The replica count the controller sets for recommendation ``raw``."""
        rec = max(self.min_replicas, min(self.max_replicas, raw))
        if not self.recommendations:
            # A new HPA starts its window with the current replicas (normalizeDesiredReplicas).
            self.recommendations.append((now, current))
        self.recommendations.append((now, rec))
        self.recommendations = [(t, r) for t, r in self.recommendations if t > now - self.down_window]
        desired = rec
        if rec < current:
            desired = min(current, max(r for _, r in self.recommendations))
        elif rec > current:
            added = sum(n for t, n in self.scale_ups if t > now - HPA_POLICY_PERIOD_SECONDS)
            base = current - added
            limit = max(math.floor(base * (1 + HPA_UP_PERCENT / 100)), base + HPA_UP_PODS)
            desired = min(rec, max(current, limit))
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        if desired > current:
            self.scale_ups.append((now, desired - current))
        self.scale_ups = [(t, n) for t, n in self.scale_ups if t > now - HPA_POLICY_PERIOD_SECONDS]
        return desired


class _HpaDriven:
    """An HPA with the default behaviour around a replica calculator (``raw``), synced every 15 s."""

    name = ""

    def __init__(self, metric: str, target: float, min_replicas: int, max_replicas: int,
                 period: float = HPA_SYNC_SECONDS) -> None:
        self.metric, self.target, self.period = metric, target, period
        self.setting = self.describe()
        self.behavior = HpaBehavior(min_replicas, max_replicas)

    def describe(self) -> str:
        """The setting as a row shows it."""
        raise NotImplementedError

    def raw(self, view: FleetView) -> int:
        """The replica calculator's recommendation."""
        raise NotImplementedError

    def desired(self, view: FleetView) -> int:
        """One HPA sync: the calculator, then the behaviour."""
        return self.behavior.apply(self.raw(view), view.replicas, view.now)


class Hpa(_HpaDriven):
    """An HPA on a per-pod vLLM metric (prometheus-adapter ``Pods`` metric, AverageValue ``target``)."""

    name = "hpa"

    def describe(self) -> str:
        """E.g. ``waiting+running avg 16/pod``."""
        return f"{self.metric} avg {self.target:g}/pod"

    def raw(self, view: FleetView) -> int:
        """Pods metric: average over the pods that report; starting pods have no metrics."""
        values = [_value(self.metric, s.waiting, s.running) for s in view.samples]
        missing = max(0, view.replicas - len(values))
        return pods_metric_replicas(values, missing, view.replicas, self.target)


class Keda(_HpaDriven):
    """KEDA's Prometheus scaler: a summed query and a threshold, handed to the HPA as an AverageValue."""

    name = "keda"

    def describe(self) -> str:
        """E.g. ``sum(waiting+running) threshold 16``."""
        return f"sum({self.metric}) threshold {self.target:g}"

    def raw(self, view: FleetView) -> int:
        """External metric: the query's total against the threshold per current replica."""
        total = sum(_value(self.metric, s.waiting, s.running) for s in view.samples)
        return external_average_replicas(total, view.replicas, self.target)


class Static:
    """A fixed fleet."""

    name = "static"
    period = 60.0

    def __init__(self, replicas: int, why: str = "") -> None:
        self.replicas = replicas
        self.setting = f"{replicas} replicas" + (f" ({why})" if why else "")

    def desired(self, view: FleetView) -> int:
        """Always the same."""
        return self.replicas
