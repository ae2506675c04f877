"""Real KEDA scaling an LLMDeployment through its scale subresource, modelfleet following.

KEDA v2.21.0 (operator + metrics API server, built from its Go module) runs beside the session's
cluster (`e2e/cluster up --with-keda`, started once by the `keda` fixture below); the HPA it creates
is run by the real kube-controller-manager, which reads KEDA's external metric through the
aggregation layer. The LLMDeployment has `autoscaling.enabled: false`, so modelfleet only copies
`spec.replicas` to its Deployment. Load comes from closed-loop clients on vllmsim processes that
stand in for the pods (autoscale_harness.py), scraped by the cluster's Prometheus, which KEDA queries.

Run: MODELFLEET_CLUSTER_DIR=/tmp/mf-me .venv/bin/pytest e2e/test_keda.py -s   (-s prints the record)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from autoscale_harness import Load, SimFleet, prom_value
from helpers import Cluster, sample, wait_for
from keda_harness import (
    HpaWatch,
    ReplicaRecorder,
    ensure_keda,
    hpa_events,
    hpa_name,
    scaled_object,
    scaled_object_ready,
    waiting_query,
)
from operator_fixture import RESYNC_SECONDS, OperatorProcess
from test_operator import get_llm, manifest, ready

pytestmark = pytest.mark.cluster

SEQS = 2  # slots of a simulator (spec.engine.maxNumSeqs)
TOKENS_PER_SECOND = 10.0  # with max_tokens 10 a request holds a slot for 1 s
CLIENTS = 14
THRESHOLD = 2  # waiting requests per replica (AverageValue of KEDA's external metric)
MAX = 3
# Hand computation: 14 closed-loop clients on one replica of 2 slots leave ~12 waiting; the HPA
# wants ceil(12 / 2) = 6 replicas, clamped to maxReplicaCount 3. At 3 replicas (6 slots) ~8 wait:
# ceil(8 / 2) = 4, still clamped to 3, so 3 holds while the load lasts. With no load the query sums
# to 0: ceil(0 / 2) = 0, clamped to minReplicaCount 1.
EXPECTED_PEAK, EXPECTED_FLOOR = MAX, 1
DOWN_WINDOW = 15  # the HPA's scaleDown stabilizationWindowSeconds (default 300: too slow for a test)
HPA_SYNC = 15  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period (default)
# modelfleet copies spec.replicas to the Deployment on the update event; a resync at the latest.
FOLLOW_LIMIT = RESYNC_SECONDS + 5.0


@pytest.fixture(scope="module")
def keda(cluster: Cluster) -> dict[str, Any]:
    """KEDA running beside the session's cluster (started here, once; `down` stops it with the cluster)."""
    try:
        return ensure_keda()
    except AssertionError as e:
        pytest.fail(str(e), pytrace=False)


def apply(cluster: Cluster, ns: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(obj))


def follow_violations(rec: ReplicaRecorder) -> list[str]:
    """Each Deployment value must be the LLMDeployment's latest value (modelfleet never sets its own),
    and each LLMDeployment value must reach the Deployment within FOLLOW_LIMIT seconds (unless KEDA
    moved it again first)."""
    problems = []
    latest_llm: int | None = None
    deployment: int | None = None
    for i, c in enumerate(rec.changes):
        if c.what == "deployment":
            deployment = c.value
            if c.value != latest_llm:
                problems.append(f"Deployment -> {c.value} at +{c.t}s but the LLMDeployment says {latest_llm}")
            continue
        latest_llm = c.value
        if deployment == c.value:
            continue
        nxt = next((d for d in rec.changes[i + 1:] if d.what == "deployment" or d.what == "llm"), None)
        if nxt is None or (nxt.what == "deployment" and (nxt.value != c.value or nxt.t - c.t > FOLLOW_LIMIT)):
            problems.append(f"LLMDeployment -> {c.value} at +{c.t}s not followed by the Deployment "
                            f"within {FOLLOW_LIMIT}s")
    return problems


def unimodal(values: list[int]) -> bool:
    """Rises (or stays), then falls (or stays): no value comes back after the sequence turned."""
    peak = values.index(max(values))
    up, down = values[: peak + 1], values[peak:]
    return up == sorted(up) and down == sorted(down, reverse=True)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Filled by the test; printed at the end (always: it is the KEDA scale record of the report)."""
    rec: dict[str, Any] = {}
    yield rec
    print("\n===== KEDA scale record =====")
    for key, value in rec.items():
        print(f"{key}:\n{value}" if isinstance(value, str) and "\n" in value else f"{key}: {value}")


def test_keda_scales_an_llmdeployment_up_and_down_and_modelfleet_follows(
    cluster: Cluster, operator: OperatorProcess, keda: dict[str, Any], namespace: str, record: dict[str, Any]
) -> None:
    ns, name = namespace, "kq"
    prom = str(cluster.prometheus_url)
    apply(cluster, ns, yaml.safe_load(manifest(name, replicas=1, engine={"maxModelLen": 8192, "maxNumSeqs": SEQS},
                                               autoscaling={"enabled": False})))
    before: dict[str, Any] = wait_for(lambda: ready(cluster, ns, name, 1), timeout=90,
                                      message=f"llm/{name} Ready with 1 replica; log:\n{operator.log_tail()}")

    with SimFleet(cluster, ns, name, max_num_seqs=SEQS, tokens_per_second=TOKENS_PER_SECOND) as fleet, \
            ReplicaRecorder(cluster, ns, name) as rec:
        fleet.wait_sims(1)
        fleet.wait_scraped(1)
        so = scaled_object(name, ns, prom, threshold=THRESHOLD, min_replicas=EXPECTED_FLOOR, max_replicas=MAX,
                           scale_down_window=DOWN_WINDOW, polling_interval=5)
        apply(cluster, ns, so)
        watch = HpaWatch(cluster, ns, hpa_name(name)).start()
        wait_for(lambda: scaled_object_ready(cluster, ns, name), timeout=60,
                 message=f"ScaledObject {name} Ready (KEDA log: {keda['logs']['keda-operator']})")
        hpa = cluster.kubectl("get", "hpa", hpa_name(name), "-n", ns, "-o", "json")
        ref = json.loads(hpa.stdout)["spec"]["scaleTargetRef"]
        assert ref == {"apiVersion": "modelfleet.io/v1alpha1", "kind": "LLMDeployment", "name": name}, ref
        # No load yet: the HPA reads the metric (0 waiting) and keeps the floor.
        wait_for(lambda: "ValidMetricFound" in _hpa_condition(cluster, ns, name, "ScalingActive"),
                 timeout=3 * HPA_SYNC, message="KEDA's HPA reading the external metric (ScalingActive)")

        with Load(fleet, clients=CLIENTS, seconds=600) as load:
            t_load = time.monotonic() - rec.started
            wait_for(lambda: (prom_value(prom, waiting_query(ns, name)) or 0) >= 2 * THRESHOLD, timeout=30,
                     message="the queue building up in Prometheus")
            wait_for(lambda: rec.current("llm") == EXPECTED_PEAK, timeout=4 * HPA_SYNC,
                     message=f"KEDA scaling llm/{name} to {EXPECTED_PEAK}; record:\n{rec.table()}")
            t_peak = _first(rec, "llm", EXPECTED_PEAK)
            wait_for(lambda: ready(cluster, ns, name, EXPECTED_PEAK) and len(fleet.pods()) == EXPECTED_PEAK,
                     timeout=60, message=f"{EXPECTED_PEAK} replicas Ready and serving")
            # Under steady load (one more HPA sync and a resync), the scale holds: nobody reverts it.
            held = _hold(rec, seconds=HPA_SYNC + RESYNC_SECONDS + 1)
            t_stop = time.monotonic() - rec.started
            load.stop()
        wait_for(lambda: rec.current("llm") == EXPECTED_FLOOR and rec.current("deployment") == EXPECTED_FLOOR,
                 timeout=DOWN_WINDOW + 4 * HPA_SYNC,
                 message=f"KEDA scaling llm/{name} back to {EXPECTED_FLOOR}; record:\n{rec.table()}")
        t_down = _first(rec, "llm", EXPECTED_FLOOR, after=t_peak)
        wait_for(lambda: ready(cluster, ns, name, EXPECTED_FLOOR), timeout=60, message="back to 1 Ready replica")
        wait_for(lambda: watch.samples and watch.samples[-1][3] == EXPECTED_FLOOR, timeout=2 * HPA_SYNC,
                 message=f"the HPA's status saying desired {EXPECTED_FLOOR}:\n{watch.table()}")
        watch.stop()

    events = hpa_events(cluster, ns, hpa_name(name))
    record.update({
        "versions": f"KEDA {keda['keda']['version']}, Kubernetes {keda['version']}",
        "load on at": f"+{t_load:.1f}s",
        "peak reached at": f"+{t_peak:.1f}s ({t_peak - t_load:.1f}s after load on)",
        "load off at": f"+{t_stop:.1f}s",
        "floor reached at": f"+{t_down:.1f}s ({t_down - t_stop:.1f}s after load off; scale-down window "
                            f"{DOWN_WINDOW}s, HPA sync {HPA_SYNC}s)",
        "replica changes (llm: spec.replicas, written by KEDA's HPA; deployment: written by modelfleet)":
            "\n" + rec.table(),
        "HPA status at each change (t from the HPA's creation)": "\n" + watch.table(),
        "HPA events": "\n".join(f"  {e['first']} {e['reason']} x{e['count']}: {e['message']}" for e in events),
        "recorder reads / errors": f"{rec.reads} / {rec.errors[-3:]}",
        "load": f"{load.ok} ok, {load.failed} failed",
    })
    llm_values = rec.values("llm")
    assert max(llm_values) == EXPECTED_PEAK and llm_values[-1] == EXPECTED_FLOOR, rec.table()
    assert unimodal(llm_values), f"spec.replicas flapped:\n{rec.table()}"
    assert held, f"the scale moved under steady load:\n{rec.table()}"
    assert not follow_violations(rec), "\n".join(follow_violations(rec)) + "\n" + rec.table()
    rescales = [e for e in events if e["reason"] == "SuccessfulRescale"]
    assert any(f"New size: {EXPECTED_PEAK}" in e["message"] for e in rescales), events
    assert any(f"New size: {EXPECTED_FLOOR}" in e["message"] for e in rescales), events
    after = get_llm(cluster, ns, name)
    spec_before = {k: v for k, v in before["spec"].items() if k != "replicas"}
    assert {k: v for k, v in after["spec"].items() if k != "replicas"} == spec_before, "modelfleet wrote the spec"
    assert not (after.get("status") or {}).get("autoscaler"), "modelfleet's own autoscaler acted while disabled"


def _first(rec: ReplicaRecorder, what: str, value: int, after: float = 0.0) -> float:
    """When `what` first took `value` after `after` seconds."""
    return next(c.t for c in rec.changes if c.what == what and c.value == value and c.t > after)


def _hold(rec: ReplicaRecorder, seconds: float) -> bool:
    """True when no replica value changes for `seconds` (an observation window, not a wait)."""
    counts = sample(lambda: len(rec.changes), seconds, interval=0.2)
    return len({n for _, n in counts}) == 1


def _hpa_condition(cluster: Cluster, ns: str, name: str, kind: str) -> str:
    hpa = json.loads(cluster.kubectl("get", "hpa", hpa_name(name), "-n", ns, "-o", "json").stdout)
    for cond in (hpa.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return f"{cond['status']} {cond.get('reason')}: {cond.get('message')}"
    return ""
