"""Closed-loop autoscaling: real Prometheus scraping one vllmsim per pod, the real operator deciding.

Each test runs an LLMDeployment with queue-depth autoscaling in its own namespace; the harness
(autoscale_harness.py) mirrors its Running pods as simulators listed for Prometheus' file SD, and a
load generator queues requests on them. Every wait polls with a deadline. On failure the test
prints status.autoscaler, the Events, the operator's log tail and what Prometheus answers.

The Prometheus-outage test runs last: it stops the cluster's Prometheus (and restarts it on the
same port, also on failure).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from autoscale_harness import Load, SimFleet, prom_query, prom_value, prometheus_stopped, selector
from helpers import Cluster, sample, wait_for
from operator_fixture import AUTOSCALE_SECONDS, OperatorProcess
from test_operator import condition, events, get_llm, manifest, ready

pytestmark = pytest.mark.cluster

SEQS = 2  # --max-num-seqs of a simulator and spec.engine.maxNumSeqs
TARGET = 2  # spec.autoscaling.targetQueueDepth: waiting requests per ready replica
WINDOW = 10  # spec.autoscaling.scaleDownStabilizationSeconds
MAX = 4
TOKENS_PER_SECOND = 10.0  # with max_tokens 10: one request holds a slot for 1 s
AUTOSCALING = {
    "enabled": True,
    "minReplicas": 1,
    "maxReplicas": MAX,
    "targetQueueDepth": TARGET,
    "scaleUpStabilizationSeconds": 0,
    "scaleDownStabilizationSeconds": WINDOW,
    "maxScaleUpStep": 4,
    "maxScaleDownStep": 4,
    "tolerance": 0.1,
}
# From the queue exceeding the target in Prometheus to the Deployment's replicas rising: the next
# cycle sees it (<= one interval); two intervals allow one missed cycle, +1 s for the cycle's own
# query and API writes.
REACTION_LIMIT = 2 * AUTOSCALE_SECONDS + 1.0


# --------------------------------------------------------------------------- helpers


class Diag:
    """What a person needs when a test fails; filled by the test, printed by the fixture."""

    def __init__(self, cluster: Cluster, operator: OperatorProcess) -> None:
        self.cluster, self.operator = cluster, operator
        self.subjects: list[tuple[str, str]] = []
        self.fleets: list[SimFleet] = []
        self.loads: list[Load] = []
        self.timeline: list[str] = []

    def note(self, text: str) -> None:
        self.timeline.append(f"{time.strftime('%H:%M:%S')} {text}")

    def report(self) -> str:
        out = []
        for ns, name in self.subjects:
            try:
                obj = get_llm(self.cluster, ns, name)
                st = obj.get("status") or {}
                out.append(f"--- llm {ns}/{name}: generation {obj['metadata'].get('generation')}, "
                           f"desiredReplicas {st.get('desiredReplicas')}, readyReplicas {st.get('readyReplicas')}")
                out.append("status.autoscaler: " + json.dumps(st.get("autoscaler"), indent=1))
                out.append("conditions: " + json.dumps(st.get("conditions"), indent=1))
                dep = self.cluster.apps.read_namespaced_deployment(name, ns)
                out.append(f"Deployment replicas {dep.spec.replicas}, ready {dep.status.ready_replicas}")
                for e in events(self.cluster, ns, name):
                    out.append(f"event {e.get('type')} {e.get('reason')} x{e.get('count', 1)}: {e.get('message')}")
            except Exception as e:
                out.append(f"(reading {ns}/{name} failed: {e})")
            try:
                from modelfleet.autoscaler.metrics import build_query

                res = prom_query(str(self.cluster.prometheus_url), build_query(f'namespace="{ns}"'))
                out.append("Prometheus (the operator's query): " + json.dumps(
                    [(r["metric"].get("signal"), r["metric"].get("pod"), r["value"][1]) for r in res]))
            except Exception as e:
                out.append(f"(Prometheus query failed: {e})")
        for f in self.fleets:
            out.append(f"simulators {f.pods()} errors {f.errors[-5:]} log {[(round(t, 1), a, p) for t, a, p in f.log]}")
        for ld in self.loads:
            out.append(f"load: {ld.ok} ok, {ld.failed} failed, last error {ld.last_error!r}")
        out.append("timeline:\n  " + "\n  ".join(self.timeline))
        out.append(f"operator log tail:\n{self.operator.log_tail(80)}")
        return "\n".join(out)


@pytest.fixture
def diag(cluster: Cluster, operator: OperatorProcess, request: pytest.FixtureRequest) -> Iterator[Diag]:
    d = Diag(cluster, operator)
    yield d
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"\n===== autoscaler diagnostics =====\n{d.report()}")


def deploy(cluster: Cluster, operator: OperatorProcess, diag: Diag, ns: str, name: str) -> dict[str, Any]:
    """Apply an autoscaled LLMDeployment and wait until it is Ready with one replica."""
    diag.subjects.append((ns, name))
    body = manifest(name, engine={"maxModelLen": 8192, "maxNumSeqs": SEQS}, autoscaling=AUTOSCALING)
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=body)
    obj: dict[str, Any] = wait_for(lambda: ready(cluster, ns, name, 1), timeout=90,
                                   message=f"llm/{name} Ready with 1 replica; log:\n{operator.log_tail()}")
    diag.note(f"{name} Ready, generation {obj['metadata']['generation']}")
    return obj


def replicas(cluster: Cluster, ns: str, name: str) -> int:
    return int(cluster.apps.read_namespaced_deployment(name, ns).spec.replicas)


def metrics_available(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return condition(get_llm(cluster, ns, name), "MetricsAvailable")


def wait_metrics_available(cluster: Cluster, ns: str, name: str) -> None:
    wait_for(lambda: metrics_available(cluster, ns, name).get("status") == "True",
             timeout=8 * AUTOSCALE_SECONDS, message="MetricsAvailable=True")


def scale_events(cluster: Cluster, ns: str, name: str) -> dict[str, int]:
    counts = {"ScaledUp": 0, "ScaledDown": 0}
    for e in events(cluster, ns, name):
        if e["reason"] in counts:
            counts[e["reason"]] += int(e.get("count") or 1)
    return counts


def queue(cluster: Cluster, ns: str, name: str) -> float | None:
    return prom_value(str(cluster.prometheus_url), f"sum(vllm:num_requests_waiting{selector(ns, name)})")


def settled(cluster: Cluster, fleet: SimFleet, ns: str, name: str) -> int | None:
    """The replica count once every replica is Ready, has a simulator and is scraped; else None."""
    dep = cluster.apps.read_namespaced_deployment(name, ns)
    n = int(dep.spec.replicas)
    if (dep.status.ready_replicas or 0) != n or len(fleet.pods()) != n:
        return None
    count = prom_value(str(cluster.prometheus_url), f"count(vllm:num_requests_waiting{selector(ns, name)})")
    return n if count == n else None


def wait_settled(cluster: Cluster, fleet: SimFleet, ns: str, name: str) -> int:
    """Wait until every replica is Ready, simulated and scraped; returns the replica count."""
    n: int = wait_for(lambda: settled(cluster, fleet, ns, name), timeout=40,
                      message="every replica Ready, simulated and scraped")
    return n


def wait_fleet_serving(cluster: Cluster, fleet: SimFleet, ns: str, name: str) -> None:
    """The first replica has a simulator, Prometheus scrapes it and the operator sees its metrics."""
    fleet.wait_sims(1)
    fleet.wait_scraped(1)
    wait_metrics_available(cluster, ns, name)


def assert_no_drift(cluster: Cluster, ns: str, name: str, before: dict[str, Any]) -> None:
    """What Argo CD compares is as applied: the autoscaler wrote only the Deployment and status."""
    after = get_llm(cluster, ns, name)
    assert after["spec"] == before["spec"], f"spec drifted:\nbefore {before['spec']}\nafter  {after['spec']}"
    assert after["metadata"]["generation"] == before["metadata"]["generation"], "metadata.generation changed"


def start_fleet(cluster: Cluster, diag: Diag, ns: str, name: str) -> SimFleet:
    fleet = SimFleet(cluster, ns, name, max_num_seqs=SEQS, tokens_per_second=TOKENS_PER_SECOND)
    diag.fleets.append(fleet)
    return fleet


# --------------------------------------------------------------------------- tests


def test_burst_scales_up_fast_and_back_down_after_window(
    cluster: Cluster, operator: OperatorProcess, namespace: str, diag: Diag
) -> None:
    ns, name = namespace, "burst"
    before = deploy(cluster, operator, diag, ns, name)
    with start_fleet(cluster, diag, ns, name) as fleet:
        wait_fleet_serving(cluster, fleet, ns, name)
        assert replicas(cluster, ns, name) == 1

        # 12 closed-loop clients on 1 replica of 2 slots: ~10 waiting > target 2 x 1 ready.
        with Load(fleet, clients=12, seconds=60) as load:
            diag.loads.append(load)
            diag.note("burst started")
            t_queue: float | None = None
            waiting_seen = 0.0

            def rose() -> int | None:
                nonlocal t_queue, waiting_seen
                q = queue(cluster, ns, name) or 0.0
                if t_queue is None and q > TARGET * 1:
                    t_queue, waiting_seen = time.monotonic(), q
                n = replicas(cluster, ns, name)
                return n if n > 1 else None

            n = wait_for(rose, timeout=30, interval=0.1, message="replicas rising above 1 under the burst")
            t_scale = time.monotonic()
            assert t_queue is not None, "replicas rose before Prometheus showed the queue above the target"
            reaction = t_scale - t_queue
            print(f"\nREACTION (burst): Prometheus showed queue {waiting_seen:g} > target {TARGET}x1 ready; "
                  f"Deployment replicas 1->{n} {reaction:.2f} s later (limit {REACTION_LIMIT:g} s = two "
                  f"{AUTOSCALE_SECONDS} s cycles + 1 s)")
            diag.note(f"replicas 1->{n}, reaction {reaction:.2f}s")
            assert reaction <= REACTION_LIMIT, f"scale-up took {reaction:.2f}s > {REACTION_LIMIT}s"
            obj = get_llm(cluster, ns, name)
            assert obj["status"]["desiredReplicas"] == n
            # status.autoscaler is written right after the scale (a few API calls later): poll for it.
            obj = wait_for(
                lambda: (o := get_llm(cluster, ns, name))["status"].get("autoscaler", {}).get("decision") == "scale-up"
                and o,
                timeout=2 * AUTOSCALE_SECONDS, interval=0.1, message="status.autoscaler showing the scale-up",
            )
            assert obj["status"]["autoscaler"]["desiredReplicas"] == n, obj["status"]["autoscaler"]
            up = [e for e in events(cluster, ns, name) if e["reason"] == "ScaledUp"]
            assert up and "queue" in up[0]["message"], up

            # The harness follows the new pods: every replica gets a simulator and is scraped.
            top = wait_settled(cluster, fleet, ns, name)
            diag.note(f"settled at {top} replicas")
            load.stop()
            t_stop = time.monotonic()
            diag.note("load stopped")

        # The queue drains; the scale-down waits for the window, then goes to minReplicas.
        wait_for(lambda: queue(cluster, ns, name) == 0, timeout=20, message="the queue drained in Prometheus")
        wait_for(lambda: replicas(cluster, ns, name) == 1, timeout=WINDOW + 6 * AUTOSCALE_SECONDS,
                 interval=0.2, message=f"replicas back to 1 after the {WINDOW}s window")
        down_after = time.monotonic() - t_stop
        print(f"SCALE-DOWN: {top}->1, {down_after:.1f} s after the load stopped (window {WINDOW} s)")
        diag.note(f"replicas {top}->1 {down_after:.1f}s after the load stopped")
        assert down_after >= WINDOW - 1.5, f"scaled down {down_after:.1f}s after the load, before the {WINDOW}s window"
        down = [e for e in events(cluster, ns, name) if e["reason"] == "ScaledDown"]
        # One step, or two when the load's tail left a middle recommendation in the window (4→2, 2→1).
        # (Events come back unordered: look for the first and the last step by content.)
        messages = [e["message"] for e in down]
        assert any(m.endswith("→1") for m in messages), messages
        assert any(f"{top}→" in m for m in messages), messages
        fleet.wait_sims(1)
        fleet.wait_scraped(1)
    assert_no_drift(cluster, ns, name, before)


def test_steady_load_does_not_oscillate(
    cluster: Cluster, operator: OperatorProcess, namespace: str, diag: Diag
) -> None:
    ns, name = namespace, "steady"
    before = deploy(cluster, operator, diag, ns, name)
    observe = 8 * AUTOSCALE_SECONDS
    with start_fleet(cluster, diag, ns, name) as fleet:
        wait_fleet_serving(cluster, fleet, ns, name)
        # 8 clients: at 3 replicas 6 run and ~2 wait (below 2 x 3): the equilibrium is below maxReplicas.
        with Load(fleet, clients=8, seconds=120) as load:
            diag.loads.append(load)
            wait_for(lambda: replicas(cluster, ns, name) > 1, timeout=30, message="the initial rise")
            n = wait_settled(cluster, fleet, ns, name)
            rise = scale_events(cluster, ns, name)
            diag.note(f"settled at {n} replicas; events so far {rise}")
            history = [(0.0, n)]
            for t, cur in sample(lambda: replicas(cluster, ns, name), observe):
                if cur != history[-1][1]:
                    history.append((t, cur))
                    diag.note(f"replicas -> {cur}")
            assert load.running, "the load generator stopped early"
            load.stop()
        total = scale_events(cluster, ns, name)
        print(f"\nSTEADY: {n} replicas under 8 clients; replica changes over {observe} s of steady load: "
              f"{len(history) - 1} ({history}); scale events {total}; requests ok {load.ok} failed {load.failed}")
        for e in events(cluster, ns, name):
            if e["reason"] in ("ScaledUp", "ScaledDown"):
                print(f"  event {e['reason']} x{e.get('count', 1)}: {e['message']}")
        assert len(history) == 1, f"replicas changed under steady load: {history}"
        assert total == rise, f"scale events during steady load: before {rise}, after {total}"
        assert total["ScaledDown"] == 0 and total["ScaledUp"] == 1, f"more than the initial rise: {total}"
    assert_no_drift(cluster, ns, name, before)


def test_prometheus_down_holds_replicas(  # keep last in the file: it stops the cluster's Prometheus
    cluster: Cluster, operator: OperatorProcess, namespace: str, diag: Diag
) -> None:
    ns, name = namespace, "blind"
    before = deploy(cluster, operator, diag, ns, name)
    hold = WINDOW + 2 * AUTOSCALE_SECONDS
    with start_fleet(cluster, diag, ns, name) as fleet:
        wait_fleet_serving(cluster, fleet, ns, name)
        with Load(fleet, clients=12, seconds=60) as load:
            diag.loads.append(load)
            wait_for(lambda: replicas(cluster, ns, name) > 1, timeout=30, message="the rise under the burst")
            n = wait_settled(cluster, fleet, ns, name)
            load.stop()
        diag.note(f"{n} replicas; load stopped, stopping Prometheus")
        # Without metrics nothing may scale down, although the load is gone and the window passes.
        with prometheus_stopped(cluster) as pid:
            t_kill = time.monotonic()
            diag.note(f"Prometheus pid {pid} stopped")
            cond = wait_for(lambda: (c := metrics_available(cluster, ns, name)).get("status") == "False" and c,
                            timeout=3 * AUTOSCALE_SECONDS + 2, interval=0.2, message="MetricsAvailable=False")
            print(f"\nPROMETHEUS DOWN: MetricsAvailable=False after {time.monotonic() - t_kill:.1f} s: "
                  f"{cond['reason']}: {cond['message']}")
            assert cond["reason"] == "SourceFailed" and "Prometheus" in cond["message"], cond
            left = max(0.0, hold - (time.monotonic() - t_kill))
            seen = {value for _, value in sample(lambda: replicas(cluster, ns, name), left)}
            obj = get_llm(cluster, ns, name)
            assert seen == {n}, f"replicas changed while Prometheus was down: {sorted(seen)} (had {n})"
            assert obj["status"]["desiredReplicas"] == n, obj["status"]
            assert condition(obj, "MetricsAvailable")["status"] == "False"
            warnings = [e for e in events(cluster, ns, name) if e["reason"] == "MetricsUnavailable"]
            assert warnings and warnings[0]["type"] == "Warning", warnings
            diag.note(f"held {n} replicas for {hold}s without Prometheus")
            print(f"PROMETHEUS DOWN: held {n} replicas for {time.monotonic() - t_kill:.1f} s "
                  f"(scale-down window {WINDOW} s)")
        t_back = time.monotonic()
        wait_metrics_available(cluster, ns, name)
        print(f"PROMETHEUS BACK: MetricsAvailable=True {time.monotonic() - t_back:.1f} s after the restart")
    assert_no_drift(cluster, ns, name, before)
