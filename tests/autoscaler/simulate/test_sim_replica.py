"""One simulated replica against hand computations.

The model below has round numbers so every time is computable by hand:
prefill = prompt x 2 x 1e9 / 2e12 = 1 ms per prompt token;
decode step = max((1e9 + ctx x 1e6) / 1e11, 2e9 x b / 2e12) = 10 ms + 0.01 ms per KV token.
"""

from __future__ import annotations

import pytest

from modelfleet.api import LLMDeploymentSpec
from modelfleet.autoscaler.simulate.replica import ModelError, Replica, ReplicaModel
from modelfleet.autoscaler.simulate.trace import Request

MODEL = ReplicaModel(kv_tokens=1000, max_num_seqs=4, weights_bytes=1e9, kv_bytes_per_token=1e6, parameters=1e9,
                     bandwidth=1e11, flops=2e12, cold_start=30.0)


def test_step_and_prefill_times_by_hand() -> None:
    assert MODEL.prefill_seconds(100) == pytest.approx(0.1)
    assert MODEL.step_seconds(2, 500) == pytest.approx(0.015)  # (1e9 + 5e8) / 1e11
    assert MODEL.step_seconds(40, 0) == pytest.approx(0.04)  # compute-bound: 2e9 x 40 / 2e12
    assert MODEL.concurrency(300) == 3  # 1000 // 300 < maxNumSeqs 4


def test_single_request_ttft_on_an_idle_replica() -> None:
    r = Replica(MODEL, 0.0, 0.0)
    r.queue.append(Request(0.1, 100, 1))
    ttfts: list[float] = []
    done = r.tick(0.0, 0.25, ttfts)
    # Arrives at 0.1 s, prefill of 100 tokens = 0.1 s: first token at 0.2 s. One output token only:
    # it came with the prefill, so the request is done in the same tick.
    assert ttfts == [pytest.approx(0.1)]
    assert done == 1 and r.idle() and r.kv_reserved == 0


def test_decode_runs_one_token_per_step_until_the_output_is_done() -> None:
    r = Replica(MODEL, 0.0, 0.0)
    r.queue.append(Request(0.0, 100, 11))  # 10 decode steps after the prefill
    ttfts: list[float] = []
    # Tick 1: prefill 0.1 s, then 0.15 s of decode at (1e9 + 100..110 x 1e6) / 1e11 ~ 11 ms a step
    # = 13.6 steps > 10: done in the first tick.
    assert r.tick(0.0, 0.25, ttfts) == 1
    r2 = Replica(MODEL, 0.0, 0.0)
    r2.queue.append(Request(0.0, 100, 71))  # 70 steps of 11.0-11.7 ms (context 100 -> 170 tokens)
    n_ticks = 0
    while not r2.idle():
        r2.tick(n_ticks * 0.25, 0.25, ttfts)
        n_ticks += 1
    # 0.1 s prefill + 70 x ~11.35 ms = 0.89 s -> done in the 4th tick (0.75-1.0 s)
    assert n_ticks == 4


def test_admission_waits_for_kv_room_and_keeps_fcfs_order() -> None:
    r = Replica(MODEL, 0.0, 0.0)
    big, small_1, small_2 = Request(0.0, 500, 400), Request(0.0, 50, 60), Request(0.0, 10, 10)
    r.queue.extend([big, small_1, small_2])
    ttfts: list[float] = []
    r.tick(0.0, 0.25, ttfts)
    # big reserves 900 of 1000 KV tokens; small_1 needs 110 > 100 left: it waits, and small_2
    # (which would fit) waits behind it, as vLLM's FCFS scheduler does.
    assert len(r.running) == 1 and list(r.queue) == [small_1, small_2] and r.kv_reserved == 900
    t = 0.25
    while r.running:
        r.tick(t, 0.25, ttfts)
        t += 0.25
    # big is done: 0.5 s prefill + 399 steps of 15-19 ms (context 500 -> 900 tokens) ~ 7.3 s.
    assert 6.5 < t < 8.0 and len(ttfts) == 1
    r.tick(t, 0.25, ttfts)
    # The two small ones got their KV room in the next tick: TTFT = their wait + prefill.
    assert len(ttfts) == 3 and ttfts[1] == pytest.approx(t + 0.05) and ttfts[2] == pytest.approx(t + 0.06)


def test_batch_slots_cap_admissions() -> None:
    r = Replica(MODEL, 0.0, 0.0)
    r.queue.extend(Request(0.0, 10, 50) for _ in range(6))
    r.tick(0.0, 0.25, [])
    assert len(r.running) == 4 and len(r.queue) == 2  # maxNumSeqs 4


def test_spec_that_does_not_fit_gives_the_planners_reason() -> None:
    spec = LLMDeploymentSpec.model_validate({
        "model": {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct"}, "gpu": {"count": 1, "product": "NVIDIA-L4"}})
    with pytest.raises(ModelError, match=r"does not fit its GPUs: weights .* exceed the vLLM budget"):
        ReplicaModel.from_spec(spec)


def test_cold_start_is_image_pull_plus_weights_over_bandwidth_plus_engine_start() -> None:
    spec = LLMDeploymentSpec.model_validate({
        "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}, "gpu": {"count": 1, "product": "NVIDIA-L4"},
        "engine": {"maxModelLen": 8192}})
    m = ReplicaModel.from_spec(spec, image_pull_seconds=20, load_gbps=2.0, engine_start_seconds=30)
    # 8.03e9 parameters x 2 bytes = 16.06 GB (the planner's weights) / 2 GB/s = 8.03 s
    assert m.cold_start == pytest.approx(20 + 16.06 / 2.0 + 30, abs=0.1)
    # L4 datasheet: 300 GB/s; a decode step of one short sequence reads the weights once at 77 %.
    assert m.step_seconds(1, 0) == pytest.approx(16.06e9 / (300e9 * 0.77), rel=0.01)
