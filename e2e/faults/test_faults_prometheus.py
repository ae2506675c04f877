"""Prometheus faults under the autoscaler: stopped, answering garbage, and answering +Inf / NaN.

The real Prometheus of the fault cluster scrapes one FakeVllmMetrics per pod (named fake: a vLLM
/metrics with the values the test sets); the operator reaches Prometheus through a FaultProxy, so
the test can make "Prometheus" answer garbage. In every fault the Deployment's replicas are held
and MetricsAvailable=False says why; when the fault ends MetricsAvailable=True again.

Hand computation of the steady state. The fakes export no KV-cache gauge (as a vLLM without it), so
the policy's queue-depth rule applies (policy docstring: load = running/S, excess = max(0, waiting -
T*ready - (S+T)*starting), raw = load + starting + excess/T; S = maxNumSeqs = 2, T = 2):
- phase 1, each pod waiting 4, running 2; 1 ready pod: load 1, excess 2, raw 2 -> scale to 2
  (while the 2nd pod starts: excess max(0, 4 - 2 - 4) = 0, raw 1 + 1 = 2: still 2);
- steady, each pod waiting 2, running 2: 2 ready pods: load 2, excess 0, raw 2 -> hold at 2.
A wrong "no load" reading (raw 0) would scale down to minReplicas 1 after the 4 s window; a +Inf
read as a number would scale up to maxReplicas 4. Either shows in the replica watch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from faultkit import (
    AUTOSCALE,
    ExporterFleet,
    Figure,
    Operators,
    Watch,
    apply,
    condition,
    llm,
    llm_body,
    make_namespace,
    record,
)
from faultproxy import FaultProxy
from helpers import sample, wait_for
from private_cluster import PrivateCluster

pytestmark = pytest.mark.cluster
AUTOSCALING = {
    "enabled": True, "minReplicas": 1, "maxReplicas": 4, "targetQueueDepth": 2,
    "scaleUpStabilizationSeconds": 0, "scaleDownStabilizationSeconds": 4,
    "maxScaleUpStep": 4, "maxScaleDownStep": 4, "tolerance": 0.1,
}
GARBAGE = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
           b'{"status": "success", "data": {"resu\x00\xff\xfe')


def metrics_condition(pc: PrivateCluster, ns: str, name: str) -> dict[str, Any]:
    return condition(llm(pc, ns, name), "MetricsAvailable")


def test_prometheus_stopped_garbage_inf_nan_hold_replicas(fc: PrivateCluster, ops: Operators) -> None:
    ns = make_namespace(fc, "prometheus")
    prom_port = int(str(fc.prometheus_url).rsplit(":", 1)[1])
    name = "p"

    def replicas() -> int:
        return int(fc.apps.read_namespaced_deployment(name, ns).spec.replicas)

    with FaultProxy(("127.0.0.1", prom_port)) as proxy, \
            ExporterFleet(fc, ns, name, waiting=4.0, running=2.0, kv=None) as fleet:
        op = ops.start("prom", prometheus_url=f"http://{proxy.address}", stale_after_seconds="8")
        apply(fc, ns, llm_body(name, engine={"maxModelLen": 8192, "maxNumSeqs": 2}, autoscaling=AUTOSCALING))
        wait_for(lambda: replicas() == 2, timeout=60,
                 message=f"the scale-up to 2 (raw 2 by hand); log:\n{op.log_tail()}")
        fleet.set(waiting=2.0)  # steady at 2 (see the module docstring)
        wait_for(lambda: len(fleet.pods()) == 2 and metrics_condition(fc, ns, name).get("status") == "True",
                 timeout=30, message="2 pods exported and MetricsAvailable=True")

        faults: list[tuple[str, Callable[[], None], Callable[[], None], str | None]] = [
            ("stopped", lambda: fc.stop("prometheus"), lambda: fc.start("prometheus"), None),
            ("garbage", lambda: proxy.garbage(GARBAGE), proxy.forward, None),
            ("+Inf", lambda: fleet.set(waiting=math.inf), lambda: fleet.set(waiting=2.0), "inf"),
            ("NaN", lambda: fleet.set(waiting=math.nan), lambda: fleet.set(waiting=2.0), "nan"),
        ]
        detect: dict[str, float] = {}
        recover: dict[str, float] = {}
        reasons: dict[str, str] = {}
        for label, inject, restore, word in faults:
            with Watch(replicas) as watch:
                t0 = time.monotonic()
                inject()
                try:
                    cond = wait_for(lambda: (c := metrics_condition(fc, ns, name)).get("status") == "False" and c,
                                    timeout=8 * AUTOSCALE + 10, interval=0.2,
                                    message=f"MetricsAvailable=False with Prometheus {label}; log:\n{op.log_tail()}")
                    detect[label] = time.monotonic() - t0
                    reasons[label] = f"{cond.get('reason')}: {cond.get('message')}"
                    # Held through three more cycles, longer than the 4 s scale-down window.
                    held = sample(replicas, seconds=3 * AUTOSCALE, interval=0.5)
                finally:
                    t1 = time.monotonic()
                    restore()
                wait_for(lambda: metrics_condition(fc, ns, name).get("status") == "True", timeout=8 * AUTOSCALE + 20,
                         interval=0.2, message=f"MetricsAvailable=True after Prometheus {label} ended")
                recover[label] = time.monotonic() - t1
            assert watch.seen() == {2} and {v for _, v in held} == {2}, (
                f"replicas changed while Prometheus was {label}: {watch.values}")
            assert cond.get("reason") and cond.get("message"), cond
            if word:
                assert word in cond["message"].lower(), f"the {label} message should name the bad sample: {cond}"
            print(f"\nPROMETHEUS {label}: MetricsAvailable=False after {detect[label]:.1f} s "
                  f"({reasons[label]}); True again {recover[label]:.1f} s after the fault ended; replicas held at 2")
        assert replicas() == 2
        record(Figure("Prometheus stopped / garbage / +Inf / NaN", injected=len(faults),
                      converge=list(recover.values()),
                      notes="detect " + ", ".join(f"{k} {v:.1f} s" for k, v in detect.items())
                      + "; replicas held at 2 in all; reasons: " + "; ".join(f"{k}: {v}" for k, v in reasons.items())))
