"""The benchmark's generated trace is deterministic and has the shape its docstring states."""

from __future__ import annotations

import itertools

from bench.autoscaler.traces import ramp_trace, rate


def test_rate_profile_by_hand() -> None:
    assert rate(0) == 1.0
    assert rate(10 * 60) == 1.0 + 3.5 * 10 / 20  # halfway up the ramp
    assert rate(30 * 60) == 4.5  # plateau
    assert rate(26 * 60) == 4.5 * 1.7  # first flash crowd
    assert rate(42 * 60) == 4.5 * 1.5  # second flash crowd
    assert rate(52.5 * 60) == 4.5 - 3.5 * 7.5 / 15  # halfway down


def test_same_seed_same_trace_and_counts_follow_the_rate() -> None:
    a, b, c = ramp_trace(7), ramp_trace(7), ramp_trace(8)
    assert a == b and a != c
    # Expected arrivals = integral of the rate: ramp 20 min x 2.75 + plateau 25 min x 4.5 + bursts
    # (4 min x 0.7 x 4.5 + 2 min x 0.5 x 4.5) + decline 15 min x 2.75, all x 60 s = 13,551.
    assert abs(len(a) - 13_551) < 4 * 13_551**0.5
    assert all(x.t <= y.t for x, y in itertools.pairwise(a))
    prompts = sorted(r.prompt_tokens for r in a)
    assert 1_100 < prompts[len(prompts) // 2] < 1_300  # lognormal median 1,200
