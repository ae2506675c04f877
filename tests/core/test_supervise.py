"""supervise: capped jittered back-off, stall detection, and a loop that survives whatever a round raises."""

from __future__ import annotations

import asyncio
import random

import pytest
from prometheus_client import REGISTRY

from modelfleet.supervise import LOOPS, Loops, backoff, supervised


@pytest.mark.parametrize(
    ("attempt", "base", "ceiling", "unjittered"),
    [
        (1, 2.0, 60.0, 2.0),  # first retry: the base
        (2, 2.0, 60.0, 4.0),
        (4, 2.0, 60.0, 16.0),  # 2 * 2^3
        (6, 2.0, 60.0, 60.0),  # 64 capped at 60
        (30, 2.0, 60.0, 60.0),  # no overflow, still the ceiling
    ],
)
def test_backoff_doubles_is_capped_and_jittered_within_20_percent(
    attempt: int, base: float, ceiling: float, unjittered: float
) -> None:
    rng = random.Random(7)
    samples = [backoff(attempt, base, ceiling, rng) for _ in range(200)]
    assert all(0.8 * unjittered <= s <= 1.2 * unjittered for s in samples), (min(samples), max(samples))
    assert len({round(s, 6) for s in samples}) > 100, "no jitter: replicas would retry in lock-step"


def test_a_loop_is_stalled_after_three_intervals_plus_slack() -> None:
    loops = Loops()
    loops.register("resync", 10, now=1000.0)
    # 3 x 10 s + 30 s slack = 60 s: at 59 s fine, at 61 s stalled.
    assert loops.stalled(now=1059.0) == {}
    assert "resync" in loops.stalled(now=1061.0)
    loops.finished("resync", now=1061.0)
    assert loops.stalled(now=1100.0) == {}


def test_failed_rounds_do_not_count_as_finished_and_are_named() -> None:
    loops = Loops()
    loops.register("registry", 5, now=0.0)
    assert loops.failed("registry", TimeoutError("read timed out")) == 1
    assert loops.failed("registry", TimeoutError("read timed out")) == 2
    stalled = loops.stalled(now=46.0)  # 3 x 5 + 30 = 45
    assert "2 failed in a row" in stalled["registry"] and "TimeoutError: read timed out" in stalled["registry"]
    loops.finished("registry", now=46.0)
    assert loops.report(now=46.0)["registry"]["consecutiveErrors"] == 0


def _sample(name: str, loop: str) -> float:
    return REGISTRY.get_sample_value(name, {"loop": loop}) or 0.0


def test_supervised_loop_survives_any_exception_counts_it_and_goes_on() -> None:
    calls: list[int] = []

    async def round_() -> None:
        calls.append(1)
        if len(calls) % 2:  # every other round explodes with something no caller expects
            raise OverflowError("cannot convert float infinity to integer")

    async def main() -> None:
        task = asyncio.create_task(supervised("unit-test-loop", 0.01, round_, first_delay=0))
        deadline = asyncio.get_running_loop().time() + 10
        while len(calls) < 6 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    errors0 = _sample("modelfleet_loop_errors_total", "unit-test-loop")
    rounds0 = _sample("modelfleet_loop_rounds_total", "unit-test-loop")
    asyncio.run(main())
    assert len(calls) >= 6, "the loop stopped after an exception"
    assert _sample("modelfleet_loop_errors_total", "unit-test-loop") - errors0 >= 3
    assert _sample("modelfleet_loop_rounds_total", "unit-test-loop") - rounds0 >= 2
    assert "unit-test-loop" not in LOOPS.report(), "a cancelled loop must not be judged stalled afterwards"
