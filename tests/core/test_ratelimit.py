"""The client-side token bucket: burst first, then `qps` per second, on a fake clock."""

from __future__ import annotations

import pytest

from modelfleet.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_passes_at_once_then_calls_are_spaced_by_one_over_qps() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=10, burst=3, clock=clock, sleep=clock.sleep)
    waits = [bucket.take() for _ in range(5)]
    # 3 tokens saved up; the 4th waits 1/10 s; the 5th another 1/10 s (hand computation: 0.1 s per token).
    assert waits[:3] == [0, 0, 0]
    assert waits[3] == pytest.approx(0.1) and waits[4] == pytest.approx(0.1)


def test_waiting_callers_queue_behind_each_other() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=2, burst=1, clock=clock, sleep=clock.sleep)
    # Three callers reserve at the same instant: 0 s, then 0.5 s and 1.0 s (2 tokens per second).
    assert [bucket.reserve() for _ in range(3)] == [0, pytest.approx(0.5), pytest.approx(1.0)]


def test_idle_time_refills_up_to_the_burst_only() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=5, burst=2, clock=clock, sleep=clock.sleep)
    bucket.take(), bucket.take()
    clock.now += 60  # a long pause saves 300 tokens' worth of time, but the bucket holds 2
    assert [bucket.reserve() for _ in range(3)] == [0, 0, pytest.approx(0.2)]


def test_qps_zero_means_no_limit() -> None:
    clock = Clock()
    bucket = TokenBucket(qps=0, burst=1, clock=clock, sleep=clock.sleep)
    assert all(bucket.take() == 0 for _ in range(1000)) and clock.slept == []
