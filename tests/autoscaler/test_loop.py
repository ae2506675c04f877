"""loop.run_cycle with a stub source and a recording actuator: what is called, when, in which order."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelfleet.api import AutoscalingSpec
from modelfleet.autoscaler.loop import AutoscalerMetrics, Outcome, Target, deletion_costs, run_cycle
from modelfleet.autoscaler.metrics import DeploymentKey, MetricsError, Signals

T0 = 1_700_000_000.0
SPEC = AutoscalingSpec(enabled=True, min_replicas=1, max_replicas=8, target_queue_depth=4)


class Source:
    def __init__(self, result: dict[DeploymentKey, Signals] | Exception) -> None:
        self.result = result
        self.calls = 0

    def fetch(self, pod_urls: Mapping[DeploymentKey, Mapping[str, str]]) -> dict[DeploymentKey, Signals]:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


class Store:
    def __init__(self, fail_for: str | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_for = fail_for

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        if name == self.fail_for:
            raise RuntimeError("409 conflict")
        self.calls.append(("scale", name, replicas))

    async def write_status(self, namespace: str, name: str, autoscaler: dict[str, Any], desired_replicas: int,
                           conditions: list[dict[str, Any]]) -> None:
        self.calls.append(("status", name, desired_replicas, {c["type"]: c["status"] for c in conditions}))

    async def event(self, namespace: str, name: str, type: str, reason: str, message: str) -> None:
        self.calls.append(("event", name, type, reason, message))


class CostStore(Store):
    async def set_deletion_costs(self, namespace: str, name: str, costs: dict[str, int]) -> None:
        self.calls.append(("costs", name, costs))


def tgt(name: str = "a", replicas: int = 3, ready: int = 3, **kw: Any) -> Target:
    return Target("ns", name, SPEC, 16, replicas, ready, **kw)


def cycle(targets: list[Target], source: Source, store: Store, now: float = T0,
          registry: CollectorRegistry | None = None) -> list[Outcome]:
    metrics = AutoscalerMetrics(registry or CollectorRegistry())
    return asyncio.run(run_cycle(targets, source, store, now, metrics=metrics))


def carry(t: Target, o: Outcome, **kw: Any) -> Target:
    """The target as the next cycle sees it: stored status from the outcome."""
    return replace(t, autoscaler_status=o.autoscaler, conditions=o.conditions, **kw)


def test_scale_up_scales_posts_event_and_writes_status_once() -> None:
    src, store = Source({("ns", "a"): Signals(23, 48, 0.9, 3, 1.0)}), Store()
    reg = CollectorRegistry()
    [o] = cycle([tgt()], src, store, registry=reg)
    assert store.calls == [
        ("scale", "a", 6),
        ("event", "a", "Normal", "ScaledUp", "queue 23 > target 4x3 ready, running 48/48 slots: 3→6"),
        ("status", "a", 6, {"MetricsAvailable": "True", "ScalingLimited": "False"}),
    ]
    assert o.autoscaler["decision"] == "scale-up" and o.autoscaler["queueDepth"] == 23
    assert reg.get_sample_value("modelfleet_autoscaler_desired_replicas", {"namespace": "ns", "name": "a"}) == 6
    assert reg.get_sample_value("modelfleet_autoscaler_scale_events_total",
                                {"namespace": "ns", "name": "a", "direction": "up"}) == 1
    assert reg.get_sample_value("modelfleet_autoscaler_cycle_seconds_count") == 1

    # Next cycle: pods arrived, queue at target. Nothing changed that status cares about: no calls.
    store2 = Store()
    src.result = {("ns", "a"): Signals(24, 96, 0.9, 6, 1.0)}
    nxt = carry(tgt(), o, replicas=6, ready_replicas=6)
    [o2] = cycle([nxt], src, store2, now=T0 + 15)
    assert store2.calls == [] and o2.decision.action == "hold"
    # Numbers alone changing does not write either.
    src.result = {("ns", "a"): Signals(25, 96, 0.9, 6, 1.0)}
    assert cycle([carry(nxt, o2)], src, store2, now=T0 + 30)[0].status_written is False
    assert store2.calls == []


def test_metrics_error_holds_everything_sets_condition_and_warns_once() -> None:
    src = Source(MetricsError("Prometheus at http://p timed out after 5s"))
    store = Store()
    outs = cycle([tgt("a"), tgt("b", replicas=5, ready=5)], src, store)
    assert src.calls == 1
    assert [o.decision.desired_replicas for o in outs] == [3, 5]
    assert ("status", "a", 3, {"MetricsAvailable": "False", "ScalingLimited": "False"}) in store.calls
    warn = [c for c in store.calls if c[0] == "event"]
    assert len(warn) == 2 and warn[0][2:4] == ("Warning", "MetricsUnavailable") and "timed out" in warn[0][4]
    assert outs[0].conditions[0]["reason"] == "SourceFailed"
    store2 = Store()
    cycle([carry(tgt("a"), outs[0])], src, store2, now=T0 + 15)
    assert store2.calls == []  # same hold, same condition: no write, no second Warning


@pytest.mark.parametrize(
    ("signals", "reason"),
    [(None, "NoSeries"), (Signals(0, 0, None, 3, 500.0), "Stale"),
     (Signals(errors=("a-1 http://x: timed out",)), "SourceFailed")],
)
def test_missing_or_stale_series(signals: Signals | None, reason: str) -> None:
    src = Source({("ns", "a"): signals} if signals else {})
    [o] = cycle([tgt(replicas=4, ready=4)], src, Store())
    assert o.decision.desired_replicas == 4 and not o.decision.metrics_available
    assert (o.conditions[0]["status"], o.conditions[0]["reason"]) == ("False", reason)


def test_one_failing_object_does_not_stop_the_others() -> None:
    src = Source({("ns", "a"): Signals(40, 48, 1, 3), ("ns", "b"): Signals(40, 48, 1, 3)})
    store = Store(fail_for="a")
    a, b = cycle([tgt("a"), tgt("b")], src, store)
    assert a.error and "409" in a.error and not a.scaled
    assert b.error is None and b.scaled and ("scale", "b", 7) in store.calls


def test_scale_down_sets_deletion_costs_first() -> None:
    src = Source({("ns", "a"): Signals(0, 3, 0.1, 3, 1.0, {"a-0": 2, "a-1": 0, "a-2": 1})})
    old = {"recommendations": [{"time": "2023-11-14T21:00:00Z", "replicas": 1}]}
    store = CostStore()
    [o] = cycle([tgt(autoscaler_status=old)], src, store)
    assert o.deletion_costs == {"a-0": 2, "a-1": 0, "a-2": 1}
    assert [c[0] for c in store.calls] == ["costs", "scale", "event", "status"]
    assert store.calls[0] == ("costs", "a", {"a-0": 2, "a-1": 0, "a-2": 1})
    assert store.calls[1] == ("scale", "a", 2) and store.calls[2][3] == "ScaledDown"


def test_limited_at_max_posts_warning_and_condition() -> None:
    src = Source({("ns", "a"): Signals(500, 128, 1, 8)})
    store = Store()
    [o] = cycle([tgt(replicas=8, ready=8)], src, store)
    assert o.conditions[1]["status"] == "True" and o.conditions[1]["reason"] == "AtMaxReplicas"
    assert any(c[0] == "event" and c[3] == "ScalingLimited" for c in store.calls)


def test_disabled_targets_are_skipped_and_one_fetch_serves_a_thousand() -> None:
    targets = [tgt(f"d{i}") for i in range(1000)] + [replace(tgt("off"), spec=SPEC.model_copy(
        update={"enabled": False}))]
    src = Source({("ns", f"d{i}"): Signals(12, 48, 0.5, 3) for i in range(1000)})
    outs = cycle(targets, src, Store())
    assert src.calls == 1 and len(outs) == 1000 and all(o.decision.action == "hold" for o in outs)


def test_condition_transition_time_kept_while_status_unchanged() -> None:
    src = Source({("ns", "a"): Signals(12, 48, 0.5, 3)})
    [o] = cycle([tgt()], src, Store())
    [o2] = cycle([carry(tgt(), o)], src, Store(), now=T0 + 3600)
    assert o2.conditions[0]["lastTransitionTime"] == o.conditions[0]["lastTransitionTime"]


@pytest.mark.parametrize(
    ("loads", "costs"),
    [({"a": 0, "b": 3.2, "c": 1}, {"a": 0, "b": 4, "c": 1}), ({}, {}), ({"x": float("nan"), "y": 1e12},
                                                                          {"y": 2**31 - 1})],
)
def test_deletion_costs(loads: dict[str, float], costs: dict[str, int]) -> None:
    assert deletion_costs(loads) == costs


def test_unusable_samples_hold_with_their_reason() -> None:
    # What metrics.parse_query_result returns when the only waiting sample was +Inf.
    src = Source({("ns", "a"): Signals(dropped=("waiting=+Inf dropped",))})
    store = Store()
    [o] = cycle([tgt(replicas=4, ready=4)], src, store)
    assert o.decision.desired_replicas == 4 and not o.decision.metrics_available
    cond = o.conditions[0]
    assert (cond["status"], cond["reason"]) == ("False", "UnusableSamples") and "+Inf" in cond["message"]


def test_an_impossible_value_cannot_crash_the_cycle_for_the_others() -> None:
    # Sources drop +Inf; should one slip through, math.ceil(inf) in the policy must cost one target a
    # decision, not the whole cycle.
    src = Source({("ns", "bad"): Signals(float("inf"), 8, 0.5, 3, 1.0), ("ns", "ok"): Signals(40, 48, 1, 3)})
    store = Store()
    outs = cycle([tgt("bad"), tgt("ok")], src, store)
    assert [o.name for o in outs] == ["ok"] and ("scale", "ok", 7) in store.calls
    assert not any(c[1] == "bad" for c in store.calls), "no action for a target without a decision"


def test_pods_that_cannot_be_created_limit_scaling_with_the_apis_words() -> None:
    # 4 wanted, 2 ready, 2 never created (quota); the queue asks for more: hold, ScalingLimited says why.
    why = "FailedCreate: pods \"a-x\" is forbidden: exceeded quota: gpus"
    src = Source({("ns", "a"): Signals(40, 32, 1, 2)})
    store = Store()
    [o] = cycle([tgt(replicas=4, ready=2, not_created=2, not_created_reason=why)], src, store)
    assert o.decision.desired_replicas == 4, "adding pods that cannot be created does not help"
    limited = o.conditions[1]
    assert (limited["status"], limited["reason"]) == ("True", "PodsNotCreated")
    assert "exceeded quota" in limited["message"]
    assert any(c[0] == "event" and c[3] == "ScalingLimited" and "exceeded quota" in c[4] for c in store.calls)


def test_pods_that_cannot_be_created_do_not_block_a_scale_down() -> None:
    # Idle fleet: 4 wanted, 2 ready and idle, 2 never created. Before, the 2 counted as "starting"
    # forever and no scale-down happened; now they count like unschedulable pods.
    src = Source({("ns", "a"): Signals(0, 0, 0.0, 2, 1.0)})
    old = {"recommendations": [{"time": "2023-11-14T21:00:00Z", "replicas": 1}]}
    [o] = cycle([tgt(replicas=4, ready=2, not_created=2, not_created_reason="FailedCreate: quota",
                     autoscaler_status=old)], src, Store())
    assert o.decision.desired_replicas < 4, o.decision.reason


def test_forget_drops_every_series_of_a_deleted_deployment() -> None:
    reg = CollectorRegistry()
    src = Source({("ns", "a"): Signals(23, 48, 0.9, 3, 1.0)})
    cycle([tgt()], src, Store(), registry=reg)
    assert reg.get_sample_value("modelfleet_autoscaler_desired_replicas", {"namespace": "ns", "name": "a"}) == 6
    metrics = AutoscalerMetrics(CollectorRegistry())  # same names, own registry: forget acts on its own series
    metrics.desired.labels("ns", "a").set(6)
    metrics.scales.labels("ns", "a", "up").inc()
    metrics.forget("ns", "a")
    left = [s for fam in metrics.desired.collect() + metrics.scales.collect() for s in fam.samples
            if s.labels.get("name") == "a"]
    assert left == [], left
