"""policy.decide: a table of situations, properties with hypothesis, and state round-trips."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelfleet.api import AutoscalingSpec
from modelfleet.autoscaler.policy import (
    Decision,
    Observation,
    PolicyState,
    Recommendation,
    ReplicaCapacity,
    decide,
)

T0 = 1_700_000_000.0
SPEC = AutoscalingSpec(enabled=True, min_replicas=1, max_replicas=8, target_queue_depth=4)
S = 16  # max_num_seqs


def sp(**kw: object) -> AutoscalingSpec:
    return SPEC.model_copy(update=kw)


def obs(waiting: float | None, running: float | None, ready: int, replicas: int | None = None,
        **kw: object) -> Observation:
    return Observation(waiting=waiting, running=running, ready_replicas=ready,
                       replicas=ready if replicas is None else replicas, **kw)  # type: ignore[arg-type]


def history(value: int, age: float) -> PolicyState:
    """A state whose only recommendation, ``value``, was made ``age`` seconds ago."""
    return PolicyState((Recommendation(T0 - age, value),))


CASES: list[tuple[str, AutoscalingSpec, Observation, PolicyState, int, str, str]] = [
    # id, spec, observation, state, desired, action, text expected in the reason
    ("queue far above target scales up at once", SPEC, obs(23, 48, 3), PolicyState(), 6, "scale-up",
     "queue 23 > target 4x3 ready, running 48/48 slots: 3→6"),
    ("step limit caps scale-up", SPEC, obs(200, 48, 3), PolicyState(), 7, "scale-up", "3→7"),
    ("max clamp", sp(max_replicas=5), obs(200, 48, 3), PolicyState(), 5, "scale-up", "3→5"),
    ("queue at target holds", SPEC, obs(12, 48, 3), PolicyState(), 3, "hold", "steady at 3"),
    ("small noise inside tolerance", SPEC, obs(13, 48, 3), PolicyState(), 3, "hold", "steady"),
    ("idle but window not passed", SPEC, obs(0, 2, 3), history(3, 100), 3, "hold", "300s scale-down window"),
    ("idle after window scales down one step", SPEC, obs(0, 2, 3), history(1, 400), 2, "scale-down", "3→2"),
    ("running load keeps replicas", SPEC, obs(0, 40, 3), history(3, 400), 3, "hold", "steady"),
    ("load shrinks to what running needs", SPEC, obs(0, 20, 4), history(2, 400), 3, "scale-down", "4→3"),
    ("queue not near zero blocks scale-down", sp(tolerance=0.0), obs(1, 0, 3), history(1, 400),
     3, "hold", "not near zero"),
    ("missing queue metric holds", SPEC, obs(None, None, 3), history(1, 400), 3, "hold",
     "no vllm:num_requests_waiting"),
    ("stale metrics hold", SPEC, obs(0, 0, 3, stale=True, stale_reason="newest sample 200s old"),
     history(1, 400), 3, "hold", "newest sample 200s old"),
    ("no ready pod reports", SPEC, obs(0, 0, 3, pods_reporting=0), history(1, 400), 3, "hold", "none of 3"),
    ("missing running blocks scale-down", SPEC, obs(0, None, 3), history(1, 400), 3, "hold",
     "running metric missing"),
    ("starting pods absorb the queue", SPEC, obs(30, 48, 3, replicas=5), PolicyState(), 5, "hold", "queue 30"),
    ("starting pods defer scale-down", SPEC, obs(0, 0, 3, replicas=5, unready_seconds=60),
     history(1, 400), 5, "hold", "2 pod(s) starting"),
    ("stuck pods beyond grace don't block", SPEC, obs(0, 0, 3, replicas=5, unready_seconds=3600),
     history(1, 400), 4, "scale-down", "5→4"),
    ("unschedulable pods stop scale-up", SPEC, obs(50, 48, 3, replicas=4, unschedulable=1), PolicyState(),
     4, "hold", "Pending unschedulable"),
    ("below min is raised even without metrics", sp(min_replicas=2), obs(None, None, 1),
     PolicyState(), 2, "scale-up", "clamped"),
    ("above max is lowered", sp(max_replicas=2), obs(0, 48, 3), PolicyState(), 2, "scale-down",
     "clamped"),
    ("kv cache saturation counts as load", SPEC, Observation(0, 8, 0.95, 3, 3), history(1, 400), 3, "hold",
     "steady"),
    # A ready pod not scraped yet is new and idle: its slots absorb the queue (found by the closed-loop e2e,
    # where extrapolating the loaded pod's queue onto it overshot 1->3->4 under a load that needs 3).
    ("unreported ready pod is capacity on its way", SPEC, obs(20, 16, 2, pods_reporting=1), PolicyState(), 2,
     "hold", "steady"),
    ("unreported ready pod and a queue beyond it", SPEC, obs(60, 16, 2, pods_reporting=1), PolicyState(), 6,
     "scale-up", "queue 60"),
    ("no scale-down while a ready pod is not in the metrics", SPEC, obs(0, 0, 3, pods_reporting=2),
     history(1, 400), 3, "hold", "not in the metrics yet"),
    ("scale-up stabilization waits", sp(scale_up_stabilization_seconds=60), obs(40, 48, 3),
     history(3, 400), 3, "hold", "scale-up window"),
    ("starting pod absorbs S+T", SPEC, obs(9, 0, 0, replicas=1), history(1, 10), 1, "hold", "steady at 1"),
    ("queue beyond a starting pod", SPEC, obs(30, 0, 0, replicas=1), history(1, 10), 4, "scale-up", "1→4"),
]


@pytest.mark.parametrize(("spec", "o", "state", "desired", "action", "text"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide_table(spec: AutoscalingSpec, o: Observation, state: PolicyState, desired: int, action: str,
                      text: str) -> None:
    d = decide(spec, o, state, T0, S)
    assert (d.desired_replicas, d.action) == (desired, action), d.reason
    assert text in d.reason


@pytest.mark.parametrize(
    ("o", "available", "limited"),
    [
        (obs(None, 0, 3), False, False),
        (obs(200, 48, 8), True, True),  # at max, wants more
        (obs(8, 48, 8), True, False),  # at max, content
        (obs(50, 48, 3, replicas=4, unschedulable=1), True, True),
    ],
)
def test_flags(o: Observation, available: bool, limited: bool) -> None:
    d = decide(SPEC, o, PolicyState(), T0, S)
    assert (d.metrics_available, d.limited) == (available, limited)
    assert bool(d.limited_reason) == limited


def run(spec: AutoscalingSpec, steps: list[tuple[float, Observation]]) -> list[Decision]:
    state, out = PolicyState(), []
    for t, o in steps:
        d = decide(spec, o, state, T0 + t, S)
        state = d.state
        out.append(d)
    return out


def test_burst_then_idle_scales_up_fast_and_down_after_window() -> None:
    seq = [(0, obs(40, 48, 3)), (15, obs(40, 112, 7))] + [(30 + 15 * i, obs(0, 0, 7)) for i in range(40)]
    ds = run(SPEC, seq)
    assert ds[0].desired_replicas == 7
    downs = [i for i, d in enumerate(ds) if d.action == "scale-down"]
    assert downs and seq[downs[0]][0] >= 30 + 300  # only once the window has passed


def test_state_survives_restart_round_trip() -> None:
    d1 = decide(SPEC, obs(40, 48, 3), PolicyState(), T0, S)
    stored = d1.state.to_status()
    assert stored["recommendations"] == [{"time": "2023-11-14T22:13:20Z", "replicas": 8}]
    restored = PolicyState.from_status(stored)
    assert restored.recommendations == d1.state.recommendations
    assert restored.last_scale_time == T0
    # After a "restart" the window still remembers 7: no scale-down 100 s later.
    d2 = decide(SPEC, obs(0, 0, 7), restored, T0 + 100, S)
    assert d2.desired_replicas == 7 and "300s scale-down window" in d2.reason


@pytest.mark.parametrize("junk", [None, {}, {"recommendations": [{"time": "yesterday", "replicas": 1},
                                                                    {"replicas": 2}, "x"],
                                         "lastScaleTime": "soon"}])
def test_from_status_tolerates_junk(junk: dict[str, object] | None) -> None:
    assert PolicyState.from_status(junk) == PolicyState()


def test_recommendations_stay_bounded() -> None:
    state = PolicyState()
    for i in range(2000):
        state = decide(SPEC, obs(float(i % 37), 48, 3), state, T0 + 15 * i, S).state
    assert len(state.recommendations) <= 64
    assert all(T0 + 15 * 1999 - r.t <= 300 + 15 * 40 for r in state.recommendations[1:])


specs = st.builds(
    lambda lo, span, target, tol, up, down, su, sd: AutoscalingSpec(
        enabled=True, min_replicas=lo, max_replicas=lo + span, target_queue_depth=target, tolerance=tol,
        max_scale_up_step=up, max_scale_down_step=down, scale_up_stabilization_seconds=su,
        scale_down_stabilization_seconds=sd),
    st.integers(1, 5), st.integers(0, 10), st.floats(0.5, 50), st.floats(0, 0.5), st.integers(1, 5),
    st.integers(1, 5), st.sampled_from([0, 30, 120]), st.sampled_from([0, 60, 300]),
)
maybe = st.one_of(st.none(), st.floats(0, 5000))
observations = st.builds(
    lambda w, r, kv, ready, extra, unsched, rep, stale, age: Observation(
        w, r, kv, ready, ready + extra + unsched, unsched, rep, stale, unready_seconds=age),
    maybe, maybe, st.one_of(st.none(), st.floats(0, 1)), st.integers(0, 20), st.integers(0, 5),
    st.integers(0, 3), st.one_of(st.none(), st.integers(0, 20)), st.booleans(),
    st.one_of(st.none(), st.floats(0, 2000)),
)
states = st.builds(
    lambda vals: PolicyState(tuple(Recommendation(T0 - 30 * (len(vals) - i), v) for i, v in enumerate(vals))),
    st.lists(st.integers(1, 20), max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(specs, observations, states, st.integers(1, 512))
def test_never_outside_bounds(spec: AutoscalingSpec, o: Observation, state: PolicyState, seqs: int) -> None:
    d = decide(spec, o, state, T0, seqs)
    assert spec.min_replicas <= d.desired_replicas <= spec.max_replicas


@settings(max_examples=400, deadline=None)
@given(specs, observations, states, st.integers(1, 512))
def test_missing_metrics_never_lower_replicas(spec: AutoscalingSpec, o: Observation, state: PolicyState,
                                              seqs: int) -> None:
    for broken in (replace(o, waiting=None), replace(o, stale=True)):
        d = decide(spec, broken, state, T0, seqs)
        assert not d.metrics_available
        assert d.desired_replicas >= min(broken.replicas, spec.max_replicas)


@settings(max_examples=400, deadline=None)
@given(specs, observations, states, st.integers(1, 512), st.floats(0, 5000), st.floats(0, 5000))
def test_monotone_in_queue_depth(spec: AutoscalingSpec, o: Observation, state: PolicyState, seqs: int,
                                 a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    o = replace(o, stale=False)
    d_lo = decide(spec, replace(o, waiting=lo), state, T0, seqs)
    d_hi = decide(spec, replace(o, waiting=hi), state, T0, seqs)
    assert d_lo.desired_replicas <= d_hi.desired_replicas


# With the planner's KV capacity (ReplicaCapacity) the policy sizes by the batch a replica really
# runs. Hand computations: KV 28,000 tokens per replica; 3 ready pods report 60 running requests
# at 0.9 KV usage -> 0.9 x 28,000 x 3 / 60 = 1,260 tokens a request -> C = 28,000 / 1,260 = 22.2
# sequences a replica (maxNumSeqs 256 would say 256). Headroom factor z = 2 (no startup seen yet).
KV = ReplicaCapacity(kv_cache_tokens=28_000)
C = 28_000 / 1_260
CAPACITY_CASES: list[tuple[str, Observation, ReplicaCapacity, int, float]] = [
    # id, observation, capacity, desired, raw
    ("saturated by KV, 40 waiting: need = 60 + (40 - 4x3)/2 = 74",
     obs(40, 60, 3, kv_cache_usage=0.9), KV, 5, (74 + 2 * 74**0.5) / C),
    ("busy, nothing waits: (60 + 2 sqrt 60) / C = 3.4 -> 4",
     obs(0, 60, 3, kv_cache_usage=0.9), KV, 4, (60 + 2 * 60**0.5) / C),
    ("starting pods absorb a batch each: 40 - 12 - 2 x 22.2 < 0 -> need = 60",
     obs(40, 60, 3, replicas=5, kv_cache_usage=0.9), KV, 5, (60 + 2 * 60**0.5) / C),
    ("a 240 s startup doubles the headroom: z = 2 x sqrt(4)",
     obs(0, 60, 3, kv_cache_usage=0.9), ReplicaCapacity(28_000, 240.0), 5, (60 + 4 * 60**0.5) / C),
]


@pytest.mark.parametrize(("case", "o", "cap", "desired", "raw"), CAPACITY_CASES, ids=[c[0] for c in CAPACITY_CASES])
def test_kv_capacity_sizes_by_the_real_batch(case: str, o: Observation, cap: ReplicaCapacity, desired: int,
                                             raw: float) -> None:
    d = decide(sp(max_replicas=32), o, history(o.replicas, 10), T0, 256, capacity=cap)
    assert d.raw == pytest.approx(raw)
    assert d.desired_replicas == desired, d.reason
    assert d.details["batch"] == pytest.approx(C)


def test_without_kv_usage_the_capacity_is_not_used() -> None:
    o = obs(23, 48, 3)
    with_cap = decide(SPEC, o, PolicyState(), T0, S, capacity=KV)
    without = decide(SPEC, o, PolicyState(), T0, S)
    assert (with_cap.desired_replicas, with_cap.raw) == (without.desired_replicas, without.raw) == (6, pytest.approx(
        48 / 16 + (23 - 12) / 4))
