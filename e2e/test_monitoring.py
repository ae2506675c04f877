"""Every dashboard query and alert expression against the real e2e Prometheus, while the real operator
autoscales a fleet of vLLM simulators under load; `modelfleet status` against the same cluster.

Prometheus scrapes the simulators (file SD, as autoscale_harness.py sets up) and the operator's own
/metrics (a file-SD target with job="modelfleet-operator", the job the chart's PodMonitor sets). Queries
on kube-state-metrics series are left out here (no kube-state-metrics in e2e) and tested with promtool
in tests/monitoring/test_promtool.py.

With MODELFLEET_DOCS_PNG=1 the dashboard picture in docs/ is redrawn from this test's data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from autoscale_harness import Load, SimFleet, prom_query
from dashboard_png import render
from helpers import Cluster, wait_for
from modelfleet.monitoring.panels import Scope, all_queries
from modelfleet.monitoring.rules import alerts
from operator_fixture import OperatorProcess
from test_operator import get_llm, manifest, ready

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
NAME = "qwen"
SEQS = 2  # --max-num-seqs of a simulator and spec.engine.maxNumSeqs
TOKENS_PER_SECOND = 20.0
MAX = 3
CLIENTS = 12  # closed-loop clients: at 3 replicas x 2 slots, 6 run and about 6 wait (target: 1 x 3 ready)
AUTOSCALING = {"enabled": True, "minReplicas": 1, "maxReplicas": MAX, "targetQueueDepth": 1,
               "scaleUpStabilizationSeconds": 0, "scaleDownStabilizationSeconds": 600, "maxScaleUpStep": 1,
               "maxScaleDownStep": 1, "tolerance": 0.1}
RATE = "30s"  # stands in for Grafana's $__rate_interval (the e2e Prometheus scrapes every 2 s)


@pytest.fixture
def operator_scraped(cluster: Cluster, operator: OperatorProcess) -> Iterator[str]:
    """The operator's /metrics as a Prometheus target with job="modelfleet-operator"; yields its address."""
    address = operator.metrics_url.removeprefix("http://").removesuffix("/metrics")
    target = cluster.targets_dir / "modelfleet-operator.json"
    target.write_text(json.dumps([{"targets": [address], "labels": {"job": "modelfleet-operator"}}]))
    url = str(cluster.prometheus_url)
    wait_for(lambda: any(r["value"][1] == "1" for r in prom_query(url, 'up{job="modelfleet-operator"}')),
             timeout=30, message=f"Prometheus scraping the operator at {address} as job modelfleet-operator")
    yield address
    target.unlink(missing_ok=True)


def empty_queries(url: str, queries: list[tuple[str, str]], namespace: str) -> list[str]:
    """The queries that return no series for `namespace` (series without a namespace label count)."""
    missing = []
    for what, expr in queries:
        try:
            result = prom_query(url, expr)
        except (OSError, ValueError) as e:
            missing.append(f"{what}: ERROR {e}\n    {expr}")
            continue
        ours = [r for r in result if r["metric"].get("namespace", namespace) == namespace]
        if not ours:
            missing.append(f"{what}: no data\n    {expr}")
    return missing


def status_cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBECONFIG=cluster.kubeconfig)
    return subprocess.run([sys.executable, "-m", "modelfleet.cli", "status", *args], capture_output=True, text=True,
                          timeout=60, env=env, check=False)


def at_max(cluster: Cluster, ns: str) -> dict[str, Any] | None:
    obj = get_llm(cluster, ns, NAME)
    st = obj.get("status") or {}
    return obj if st.get("readyReplicas") == MAX and st.get("desiredReplicas") == MAX else None


def test_every_query_returns_data_under_load_and_status_shows_the_fleet(
        cluster: Cluster, operator: OperatorProcess, operator_scraped: str, namespace: str, tmp_path: Path) -> None:
    url = str(cluster.prometheus_url)
    scope = Scope(namespace=namespace, deployment=NAME, rate=RATE)
    started = time.time()
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest(
        NAME, engine={"maxModelLen": 8192, "maxNumSeqs": SEQS}, autoscaling=AUTOSCALING))
    wait_for(lambda: ready(cluster, namespace, NAME, 1), timeout=90,
             message=f"llm/{NAME} Ready with 1 replica; log:\n{operator.log_tail()}")
    with SimFleet(cluster, namespace, NAME, max_num_seqs=SEQS, tokens_per_second=TOKENS_PER_SECOND) as fleet, \
            Load(fleet, clients=4, seconds=300, max_tokens=10) as first, ExitStack() as stack:
        # Two steps of load, so the picture shows the autoscaler following it: 4 clients ask for a second
        # replica, 12 for the third.
        wait_for(lambda: (get_llm(cluster, namespace, NAME).get("status") or {}).get("readyReplicas", 0) >= 2,
                 timeout=120, interval=0.5, message=f"{NAME} scaled to 2 ready replicas under 4 clients; log:\n"
                                                    f"{operator.log_tail()}")
        load = stack.enter_context(Load(fleet, clients=CLIENTS - 4, seconds=300, max_tokens=10))
        wait_for(lambda: at_max(cluster, namespace), timeout=120, interval=0.5,
                 message=f"{NAME} scaled to {MAX} ready replicas; load {load.ok} ok / {load.failed} failed; "
                         f"sims {fleet.pods()}; log:\n{operator.log_tail()}")
        # The annotation looks back 1m: check it first, while the last scale-up is recent.
        dashboard = [(title, q.expr) for title, q in all_queries(scope) if q.source != "kube-state-metrics"]
        annotation = [d for d in dashboard if d[0].startswith("annotation")]
        assert not empty_queries(url, annotation, namespace), empty_queries(url, annotation, namespace)

        signals = [(f"alert {a.name} (signal)", a.signal) for a in alerts() if a.source != "kube-state-metrics"]
        checks = dashboard + signals
        try:
            wait_for(lambda: not empty_queries(url, checks, namespace), timeout=90, interval=2,
                     message="every dashboard query and alert signal returning data")
        except AssertionError:
            pytest.fail("queries without data:\n" + "\n".join(empty_queries(url, checks, namespace)), pytrace=False)

        for a in alerts():  # the whole expressions, thresholds included, are valid PromQL for this Prometheus
            prom_query(url, a.expr)
        # At maxReplicas with 12 clients on 3 x 2 slots, about 6 wait against a target of 1 x 3 ready.
        queue_alert = next(a for a in alerts() if a.name == "ModelfleetQueueAboveTargetAtMaxReplicas")
        wait_for(lambda: [r for r in prom_query(url, queue_alert.expr) if r["metric"]["namespace"] == namespace],
                 timeout=30, message=f"the queue alert's condition holding:\n{queue_alert.expr}")

        # modelfleet status, from Prometheus: numbers bounded by what the fleet can physically do.
        res = status_cli(cluster, "-n", namespace, "--prometheus", url, "-o", "json")
        assert res.returncode == 0, res.stderr
        (row,) = json.loads(res.stdout)
        assert (row["name"], row["ready"], row["desired"], row["min_replicas"], row["max_replicas"]) == (
            NAME, MAX, MAX, 1, MAX), row
        assert row["target_waiting"] == 1 * MAX, row
        assert 0 <= row["running"] <= SEQS * MAX and 0 <= row["waiting"] <= CLIENTS, row
        assert 0 <= row["kv_cache_usage"] <= 1, row
        # No first token before one token time (1 / 20 tokens/s), whatever the queue.
        assert row["ttft_p95_seconds"] >= 1 / TOKENS_PER_SECOND, row
        assert row["decision"] in ("scale-up", "hold"), row

        res = status_cli(cluster, "-n", namespace, "--operator-metrics", operator.metrics_url)
        assert res.returncode == 0, res.stderr
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith(namespace))
        assert line.split()[1:5] == [NAME, "Ready", f"{MAX}/{MAX}", f"1-{MAX}"], res.stdout

        # Load stops: the queue drains, and status says so (the picture shows the drop too).
        load.stop()
        first.stop()
        drained = f'sum(vllm:num_requests_running{{namespace="{namespace}"}}) + ' \
                  f'sum(vllm:num_requests_waiting{{namespace="{namespace}"}})'
        wait_for(lambda: prom_query(url, drained)[0]["value"][1] == "0", timeout=60,
                 message="the fleet idle in Prometheus after the load stopped")
        res = status_cli(cluster, "-n", namespace, "--prometheus", url, "-o", "json")
        (row,) = json.loads(res.stdout)
        assert (row["running"], row["waiting"]) == (0, 0), row
        # Until no request finished within the rate window: the latency and throughput panels fall to nothing.
        quiet = f'sum(rate(vllm:e2e_request_latency_seconds_count{{namespace="{namespace}"}}[{RATE}]))'
        wait_for(lambda: prom_query(url, quiet)[0]["value"][1] == "0", timeout=90,
                 message=f"no request finishing within {RATE} in Prometheus")

    out = tmp_path / "dashboard.png"
    drawn = render(url, scope, started, time.time(), out)
    empty = [title for title, n in drawn.items() if n == 0 and "kube-state-metrics" not in title]
    assert not empty, f"panels drawn without data: {empty}"
    if os.environ.get("MODELFLEET_DOCS_PNG"):
        (ROOT / "docs" / "monitoring-dashboard.png").write_bytes(out.read_bytes())


def test_status_without_a_metrics_source_shows_the_cluster_view(
        cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest("fixed", replicas=1))
    wait_for(lambda: ready(cluster, namespace, "fixed", 1), timeout=90, message="llm/fixed Ready")
    res = status_cli(cluster, "-n", namespace)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[1].split() == [namespace, "fixed", "Ready", "1/1", "-", "-", "-", "-", "-", "-"]
    res = status_cli(cluster, "-n", namespace, "--prometheus", "http://127.0.0.1:9", "--timeout", "1")
    assert res.returncode == 1 and "no live numbers" in res.stderr, res.stderr
    assert "fixed" in res.stdout  # the cluster's view is still printed
