"""vllmsim behaves like vLLM where the autoscaler looks: queueing, metric names, auth."""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from e2e.vllmsim.harness import poll, vllmsim


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post(url: str, body: dict[str, object], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def samples(base: str) -> dict[str, float]:
    """Sample name -> value summed over its series (request_success_total has one per finished_reason)."""
    _, text = get(base + "/metrics")
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            assert s.labels["model_name"] == "m1"
            if "le" not in s.labels:
                out[s.name] = out.get(s.name, 0.0) + s.value
    return out


def buckets(base: str, name: str) -> dict[str, float]:
    """le -> cumulative count of one histogram."""
    _, text = get(base + "/metrics")
    return {s.labels["le"]: s.value for fam in text_string_to_metric_families(text.decode())
            for s in fam.samples if s.name == name + "_bucket"}


def test_latency_histograms_preemptions_and_finish_reasons_as_vllm_exports_them() -> None:
    # One slot, 50 tokens/s, 5 tokens each: a request holds the slot 0.1 s; each token after the first
    # comes 0.02 s after the previous one. Three requests at once: 3 x 4 = 12 inter-token observations of
    # 0.02 s (le 0.025, not le 0.01), TTFTs of about 0.02, 0.12 and 0.22 s (the queue wait counts).
    with vllmsim(model="m1", max_num_seqs=1, tokens_per_second=50) as base:
        threads = [threading.Thread(target=post, args=(base + "/v1/completions",
                                                       {"model": "m1", "prompt": "hi", "max_tokens": 5}))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        m = samples(base)
        assert m["vllm:inter_token_latency_seconds_count"] == 12
        assert abs(m["vllm:inter_token_latency_seconds_sum"] - 12 * 0.02) < 1e-9
        itl = buckets(base, "vllm:inter_token_latency_seconds")
        assert (itl["0.01"], itl["0.025"], itl["+Inf"]) == (0, 12, 12)
        assert m["vllm:time_to_first_token_seconds_count"] == 3
        ttft = buckets(base, "vllm:time_to_first_token_seconds")
        assert (ttft["0.01"], ttft["0.04"], ttft["0.1"], ttft["0.25"]) == (0, 1, 1, 3), ttft
        assert m["vllm:e2e_request_latency_seconds_count"] == 3
        # Queue waits of about 0, 0.1 and 0.2 s (one slot held 0.1 s a request): all below vLLM's first
        # request-latency bucket (0.3), summing to ~0.3 s.
        assert m["vllm:request_queue_time_seconds_count"] == 3
        assert 0.25 < m["vllm:request_queue_time_seconds_sum"] < 0.5, m["vllm:request_queue_time_seconds_sum"]
        assert buckets(base, "vllm:request_queue_time_seconds")["0.3"] == 3
        assert m["vllm:num_preemptions_total"] == 0
        _, text = get(base + "/metrics")
        reasons = {s.labels["finished_reason"]: s.value for fam in text_string_to_metric_families(text.decode())
                   for s in fam.samples if s.name == "vllm:request_success_total"}
        assert reasons == {"stop": 0, "length": 3, "abort": 0, "error": 0, "repetition": 0}


def test_queue_beyond_max_num_seqs_is_fifo_and_visible_in_metrics() -> None:
    with vllmsim(model="m1", max_num_seqs=2, tokens_per_second=20) as base:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(
            post(base + "/v1/completions", {"model": "m1", "prompt": "hi", "max_tokens": 20})[0]))
            for _ in range(5)]
        for t in threads:
            t.start()
        m = poll(lambda: (s := samples(base))["vllm:num_requests_waiting"] == 3 and s)
        assert m["vllm:num_requests_running"] == 2
        assert m["vllm:kv_cache_usage_perc"] == 1.0
        for t in threads:
            t.join(timeout=30)
        assert results == [200] * 5
        m = samples(base)
        assert (m["vllm:num_requests_waiting"], m["vllm:num_requests_running"]) == (0, 0)
        assert m["vllm:request_success_total"] == 5


def test_old_metric_names_flag() -> None:
    with vllmsim(model="m1", extra=["--old-metric-names"]) as base:
        names = samples(base)
        assert "vllm:gpu_cache_usage_perc" in names and "vllm:kv_cache_usage_perc" not in names


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/health", {}, 200),
        ("/metrics", {}, 200),
        ("/v1/models", {}, 401),
        ("/v1/models", {"Authorization": "Bearer wrong"}, 401),
        ("/v1/models", {"Authorization": "Bearer s3cret"}, 200),
    ],
)
def test_api_key_protects_v1_only(path: str, headers: dict[str, str], status: int) -> None:
    with vllmsim(model="m1", extra=["--api-key", "s3cret"]) as base:
        assert get(base + path, headers)[0] == status


def test_chat_completion_shape_and_errors() -> None:
    with vllmsim(model="m1", tokens_per_second=1000) as base:
        code, body = post(base + "/v1/chat/completions",
                          {"model": "m1", "messages": [{"role": "user", "content": "x"}], "max_tokens": 3})
        assert code == 200 and body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["role"] == "assistant" and body["usage"]["completion_tokens"] == 3
        assert post(base + "/v1/completions", {"model": "other", "prompt": "x"})[0] == 404
        assert post(base + "/v1/completions", {"model": "m1", "max_tokens": -1})[0] == 400
        _, models = get(base + "/v1/models")
        assert json.loads(models)["data"][0]["id"] == "m1"
