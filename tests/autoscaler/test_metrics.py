"""metrics.py: vLLM exposition parsing, the batched PromQL query against a real Prometheus,
the direct-scrape fallback, and clear errors for unreachable / slow / garbage servers."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
from e2e.vllmsim.harness import Prom, free_port, poll, sim_target, vllmsim

from modelfleet.autoscaler.metrics import (
    MetricsError,
    PodSample,
    PrometheusSource,
    ScrapeSource,
    Signals,
    build_query,
    combine,
    parse_exposition,
    parse_query_result,
)

FIXTURES = Path(__file__).with_name("fixtures")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("vllm_metrics.txt", PodSample(waiting=7.0, running=12.0, kv_new=0.8734, kv_old=None)),
        ("vllm_metrics_v0.txt", PodSample(waiting=0.0, running=3.0, kv_new=None, kv_old=0.25)),
    ],
)
def test_parse_real_vllm_exposition(fixture: str, expected: PodSample) -> None:
    assert parse_exposition((FIXTURES / fixture).read_text()) == expected


def test_parse_exposition_garbage_raises() -> None:
    with pytest.raises(MetricsError, match="unparseable"):
        parse_exposition('vllm:num_requests_waiting{model_name="x" 1\n')


@pytest.mark.parametrize(
    ("values", "kept", "dropped"),
    [
        ({"waiting": "+Inf", "running": "3"}, {"running": 3.0}, ["waiting=+Inf dropped"]),
        ({"waiting": "-2", "kv": "-Inf"}, {}, ["waiting=negative (-2) dropped", "kv=-Inf dropped"]),
        ({"waiting": "4", "age": "-0.5"}, {"waiting": 4.0, "age_seconds": 0.0}, []),  # clock skew: fresh
    ],
    ids=["inf-waiting", "negative-and-minus-inf", "future-timestamp"],
)
def test_unusable_samples_are_dropped_with_a_reason(values: dict[str, str], kept: dict[str, float],
                                                    dropped: list[str]) -> None:
    got = parse_query_result([item(k, v) for k, v in values.items()])[("n", "d")]
    for field_name, value in kept.items():
        assert getattr(got, field_name) == value
    assert sorted(got.dropped) == sorted(dropped)
    if "waiting" not in kept:
        assert got.waiting is None


def test_exposition_with_inf_is_dropped_with_a_reason() -> None:
    text = ('# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name="m"} +Inf\n'
            '# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running{model_name="m"} 2\n')
    sample = parse_exposition(text)
    assert sample.waiting is None and sample.running == 2
    assert sample.dropped == ("vllm:num_requests_waiting=+Inf dropped",)
    assert combine([sample]).dropped == sample.dropped


@pytest.mark.parametrize(
    ("samples", "waiting", "running", "kv", "pods"),
    [
        ([PodSample(1, 2, 0.5, None), PodSample(3, 4, 0.7, None)], 4, 6, 0.6, 2),
        ([PodSample(1, 2, None, 0.2), PodSample(0, 1, None, 0.4)], 1, 3, 0.3, 2),  # old name only
        ([PodSample(1, 2, 0.9, None), PodSample(0, 1, None, 0.1)], 1, 3, 0.9, 2),  # new wins
        ([PodSample(2, None, None, None)], 2, None, None, 1),
        ([PodSample(None, None, None, None)], None, None, None, 0),
    ],
)
def test_combine(samples: list[PodSample], waiting: float | None, running: float | None,
                 kv: float | None, pods: int) -> None:
    s = combine(samples)
    assert (s.waiting, s.running, s.pods) == (waiting, running, pods)
    assert s.kv_cache_usage == pytest.approx(kv) if kv is not None else s.kv_cache_usage is None


def item(signal: str, value: str, ns: str = "n", dep: str = "d", **extra: str) -> dict[str, Any]:
    return {"metric": {"namespace": ns, "modelfleet_io_deployment": dep, "signal": signal, **extra},
            "value": [1700000000.0, value]}


def test_parse_query_result_groups_by_deployment() -> None:
    got = parse_query_result([
        item("waiting", "5"), item("running", "8"), item("kv", "0.5"), item("pods", "2"), item("age", "1.5"),
        item("pod_running", "3", pod="d-1"), item("pod_running", "5", pod="d-2"),
        item("waiting", "0", dep="e"), item("kv", "NaN", dep="e"),
    ])
    assert got[("n", "d")] == Signals(5, 8, 0.5, 2, 1.5, {"d-1": 3, "d-2": 5})
    assert got[("n", "e")] == Signals(waiting=0, dropped=("kv=NaN dropped",))


@pytest.mark.parametrize(
    "garbage",
    [{"not": "a list"}, [{"metric": {}, "value": [0, "1"]}], [item("waiting", "lots")], [{"value": 1}], ["x"]],
)
def test_parse_query_result_garbage_raises(garbage: Any) -> None:
    with pytest.raises(MetricsError):
        parse_query_result(garbage)


def test_query_is_one_expression_over_all_signals() -> None:
    q = build_query()
    for name in ("vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc",
                 "vllm:gpu_cache_usage_perc", "by (namespace, modelfleet_io_deployment)"):
        assert name in q


@contextmanager
def fake_http(body: bytes, status: int = 200, delay: float = 0.0) -> Iterator[str]:
    """A one-route HTTP server answering every GET with ``body`` (after ``delay``)."""

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)  # simulates a slow server, not a wait in the test
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()


@pytest.mark.parametrize(
    ("body", "status", "delay", "match"),
    [
        (b"<html>not prometheus</html>", 200, 0.0, "garbage"),
        (b'{"status": "success", "data": {}}', 200, 0.0, "garbage"),
        (b'{"status": "success", "data": {"result": [{"metric": {}}]}}', 200, 0.0, "malformed"),
        (b'{"status": "error", "error": "parse error"}', 400, 0.0, "refused"),
        (b"{}", 200, 2.0, "timed out"),
    ],
)
def test_prometheus_source_errors_are_clear(body: bytes, status: int, delay: float, match: str) -> None:
    with fake_http(body, status, delay) as url, pytest.raises(MetricsError, match=match):
        PrometheusSource(url, timeout=0.3, retries=0).fetch()


def test_prometheus_source_unreachable() -> None:
    with pytest.raises(MetricsError, match="unreachable"):
        PrometheusSource(f"http://127.0.0.1:{free_port()}", timeout=1, retries=0).fetch()


def load(base: str, n: int, max_tokens: int = 400) -> None:
    """Fire ``n`` long completions at a simulator without waiting for them."""

    def one() -> None:
        req = urllib.request.Request(base + "/v1/completions", method="POST",
                                     data=json.dumps({"prompt": "x", "max_tokens": max_tokens}).encode(),
                                     headers={"Content-Type": "application/json"})
        with contextlib.suppress(OSError):  # the simulator is killed at the end of the test
            urllib.request.urlopen(req, timeout=60).read()

    for _ in range(n):
        threading.Thread(target=one, daemon=True).start()


def test_real_prometheus_one_query_for_all_deployments(prometheus: Prom) -> None:
    with ExitStack() as stack:
        a1 = stack.enter_context(vllmsim(model="a", max_num_seqs=1, tokens_per_second=20))
        a2 = stack.enter_context(vllmsim(model="a", max_num_seqs=4, tokens_per_second=20))
        b1 = stack.enter_context(vllmsim(model="b", max_num_seqs=4, extra=["--old-metric-names"]))
        prometheus.set_targets([sim_target(a1, "ns1", "a", "a-1"), sim_target(a2, "ns1", "a", "a-2"),
                                sim_target(b1, "ns2", "b", "b-1")])
        load(a1, 3)  # 1 running, 2 waiting
        load(a2, 2)  # 2 running
        src = PrometheusSource(prometheus.url, timeout=5, retries=1)

        def ready() -> dict[tuple[str, str], Signals] | None:
            got = src.fetch()
            a = got.get(("ns1", "a"))
            b = got.get(("ns2", "b"))
            ok = a and b and a.pods == 2 and a.waiting == 2 and a.running == 3 and b.kv_cache_usage is not None
            return got if ok else None

        got = poll(ready, 30, "both deployments scraped with the load visible")
        a, b = got[("ns1", "a")], got[("ns2", "b")]
        assert a.kv_cache_usage == pytest.approx((1.0 + 0.5) / 2)
        assert dict(a.pod_running) == {"a-1": 1.0, "a-2": 2.0}
        assert b.kv_cache_usage == 0.0 and b.pods == 1  # fell back to vllm:gpu_cache_usage_perc
        assert a.age_seconds is not None and 0 <= a.age_seconds < 10

        # A pod that goes away stops counting once Prometheus marks its series stale.
        prometheus.set_targets([sim_target(a1, "ns1", "a", "a-1"), sim_target(b1, "ns2", "b", "b-1")])
        poll(lambda: src.fetch()[("ns1", "a")].pods == 1, 30, "a-2 dropped from the pod count")


def test_scrape_source_against_simulators() -> None:
    with vllmsim(model="a", max_num_seqs=1, tokens_per_second=20) as a1, \
            vllmsim(model="a", extra=["--old-metric-names"]) as a2:
        load(a1, 2)
        urls = {("ns", "a"): {"a-1": a1 + "/metrics", "a-2": a2 + "/metrics",
                              "gone": f"http://127.0.0.1:{free_port()}/metrics"}}
        src = ScrapeSource(timeout=1)
        s = poll(lambda: (r := src.fetch(urls)[("ns", "a")]).waiting == 1 and r, 10, "queue visible")
        assert (s.running, s.pods, dict(s.pod_running)) == (1, 2, {"a-1": 1.0, "a-2": 0.0})
        assert s.kv_cache_usage == 1.0  # a-1 reports the new name, so the old one is ignored
        assert len(s.errors) == 1 and s.errors[0].startswith("gone ")
