"""The oracle on a tiny trace, computed by hand."""

from __future__ import annotations

import pytest

from modelfleet.autoscaler.simulate.oracle import minute_work, oracle_replica_hours, oracle_replicas
from modelfleet.autoscaler.simulate.replica import ReplicaModel
from modelfleet.autoscaler.simulate.trace import Request

# prefill 1 ms / token; step = 10 ms + 0.01 ms per KV token; KV 10,000 tokens, 4 slots.
MODEL = ReplicaModel(kv_tokens=10_000, max_num_seqs=4, weights_bytes=1e9, kv_bytes_per_token=1e6, parameters=1e9,
                     bandwidth=1e11, flops=2e12, cold_start=30.0)
# Minute 0: 3 requests; minute 1: 30 requests, one a second from 60 s to 89 s.
TRACE = [Request(float(t), 1000, 100) for t in (0, 10, 20)] + [Request(float(t), 1000, 100) for t in range(60, 90)]


def test_minute_work_and_replicas_by_hand() -> None:
    # Each request needs 1,100 KV tokens: 10,000 // 1,100 = 9 > 4 slots, so the full batch is 4.
    # Mean context 1,000 + 100 / 2 = 1,050 tokens; step(4, 4,200) = 0.01 + 0.042 = 0.052 s -> 0.013 s
    # a token per sequence. Work per request: 1.0 s prefill + 100 x 0.013 = 2.3 s.
    assert minute_work(TRACE, MODEL) == [pytest.approx(3 * 2.3), pytest.approx(30 * 2.3)]
    assert oracle_replicas(TRACE, MODEL) == [1, 2]  # ceil(6.9 / 60), ceil(69 / 60)
    assert oracle_replicas(TRACE, MODEL, min_replicas=2) == [2, 2]


def test_replica_hours_bill_the_last_minute_pro_rata() -> None:
    # 1 replica for minute 0, 2 replicas for the 29 s of minute 1 up to the last arrival (89 s).
    assert oracle_replica_hours(TRACE, MODEL) == pytest.approx((60 + 2 * 29) / 3600)
