"""The benchmark's simulation is sane (no timing assertions): requests are conserved, a
saturated fleet makes requests wait, and autoscaling reduces that wait."""

from __future__ import annotations

from bench.autoscaler import traces
from bench.autoscaler.run import keda_hpa, modelfleet
from bench.autoscaler.sim import Engine, simulate

from modelfleet.api import AutoscalingSpec
from modelfleet.autoscaler.policy import Observation

ENGINE = Engine(max_num_seqs=8, cold_start=(10, 20))
RATES = [3.0] * 600  # ~3 req/s x ~6.4 s = ~19 concurrent: needs 3 replicas of 8 slots


def test_fixed_fleet_conserves_requests_and_queues_when_too_small() -> None:
    small = simulate(RATES, lambda o, t: 1, engine=ENGINE, period=15, initial=1, seed=3)
    big = simulate(RATES, lambda o, t: 6, engine=ENGINE, period=15, initial=6, seed=3)
    assert len(small.waits) == len(big.waits) > 1500
    assert small.p(0.95) > 60 > big.p(0.95)
    assert big.replica_seconds >= 6 * 600


def test_policy_scales_a_saturated_fleet_and_beats_a_single_replica() -> None:
    spec = AutoscalingSpec(enabled=True, min_replicas=1, max_replicas=8)
    scaled = simulate(RATES, modelfleet(spec, ENGINE.max_num_seqs), engine=ENGINE, period=15, initial=1, seed=3)
    single = simulate(RATES, lambda o, t: 1, engine=ENGINE, period=15, initial=1, seed=3)
    assert 3 <= scaled.max_replicas_seen <= 8 and scaled.scale_events >= 1
    assert scaled.p(0.95) < single.p(0.95) / 4


def test_baseline_is_hpa_average_value() -> None:
    hpa = keda_hpa(1, 10)
    assert hpa(Observation(50, 0, None, 2, 2), 0) == 6  # ceil(50/5) = 10, at most max(2x, +4) per step
    assert hpa(Observation(31, 0, None, 6, 6), 30) == 6  # 31/(5x6) = 1.03: inside the 0.1 tolerance
    assert hpa(Observation(0, 0, None, 4, 4), 60) == 4  # scale-down waits for the 300 s window
    assert hpa(Observation(0, 0, None, 4, 4), 90) == 4  # never *up* because of the window
    assert hpa(Observation(0, 0, None, 4, 4), 400) == 1


def test_traces_are_deterministic() -> None:
    assert traces.bursty(seed=5, seconds=3600) == traces.bursty(seed=5, seconds=3600)
    assert traces.bursty(seed=5, seconds=3600) != traces.bursty(seed=6, seconds=3600)
    day = traces.diurnal(seconds=86400)
    assert min(day) < 2 and max(day) > 18
