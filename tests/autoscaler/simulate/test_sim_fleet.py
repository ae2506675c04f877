"""The replay loop: cold start before a new replica serves, metrics only through scrapes, billing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from modelfleet.autoscaler.simulate.baselines import Static
from modelfleet.autoscaler.simulate.fleet import FleetView, simulate
from modelfleet.autoscaler.simulate.replica import ReplicaModel
from modelfleet.autoscaler.simulate.trace import Request

# 1 ms of prefill per prompt token (see test_sim_replica.py); 30 s cold start.
MODEL = ReplicaModel(kv_tokens=1000, max_num_seqs=4, weights_bytes=1e9, kv_bytes_per_token=1e6, parameters=1e9,
                     bandwidth=1e11, flops=2e12, cold_start=30.0)


def test_a_request_waits_for_the_cold_start_of_the_first_replica() -> None:
    res = simulate([Request(0.0, 100, 1)], MODEL, Static(1), initial=0)
    # The autoscaler creates the pod at t=0; it serves from t=30 (cold start); prefill 0.1 s.
    assert res.ttfts == [pytest.approx(30.1)]
    assert res.completed == 1 and res.scale_events == 1
    # Billed from creation, over the trace's duration (last arrival + one tick = 0.25 s).
    assert res.replica_seconds == pytest.approx(0.25)


def test_an_override_of_the_cold_start_is_used() -> None:
    res = simulate([Request(0.0, 100, 1)], MODEL, Static(1), initial=0, cold_start=5.0)
    assert res.ttfts == [pytest.approx(5.1)]


class Recorder:
    """An autoscaler that keeps what it saw and holds the fleet."""

    name, setting, period = "rec", "", 5.0

    def __init__(self) -> None:
        self.seen: list[FleetView] = []

    def desired(self, view: FleetView) -> int:
        self.seen.append(view)
        return view.replicas


def test_autoscalers_see_metrics_only_as_of_the_last_scrape() -> None:
    # One long request arrives at t=1: the t=0 scrape saw an empty replica, the t=15 one sees it.
    rec = Recorder()
    big_kv = replace(MODEL, kv_tokens=100_000)  # room for long requests (> 30 s of decode)
    simulate([Request(1.0, 10, 3000), Request(20.0, 10, 1)], big_kv, rec, initial=1, scrape_interval=15.0)
    by_time = {v.now: v for v in rec.seen}
    assert by_time[5.0].samples[0].running == 0 and by_time[10.0].samples[0].running == 0
    assert by_time[15.0].samples[0].running == 1


def test_kv_usage_in_a_scrape_is_the_reserved_share() -> None:
    rec = Recorder()
    big_kv = replace(MODEL, kv_tokens=100_000)
    simulate([Request(0.0, 100, 4900), Request(20.0, 10, 1)], big_kv, rec, initial=1, scrape_interval=15.0)
    seen = {v.now: v for v in rec.seen}[15.0].samples[0]
    assert seen.running == 1 and seen.kv_usage == pytest.approx(0.05)  # (100 + 4900) / 100,000


def test_scale_down_drains_a_busy_pod_and_bills_it_until_empty() -> None:
    class Down:
        name, setting, period = "down", "", 1.0

        def desired(self, view: FleetView) -> int:
            return 1

    # Two ready pods, one long request each (least-request routing spreads them); at t=0.25 the
    # autoscaler wants 1: the removed pod keeps its request until it is done.
    reqs = [Request(0.0, 10, 200), Request(0.1, 10, 200), Request(10.0, 10, 1)]
    res = simulate(reqs, MODEL, Down(), initial=2)
    assert res.completed == 3 and res.scale_events == 1
    # Both pods billed while the drained one decodes its 200 tokens (199 steps of ~10.2 ms ~ 2.0 s),
    # then one pod to 10.25 s.
    assert 10.25 + 2.0 <= res.replica_seconds < 10.25 + 3.0
