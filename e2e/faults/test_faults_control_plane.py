"""Faults of the control plane under a running operator: the apiserver and etcd restarted mid-rollout,
and the operator's own connection to the apiserver black-holed through a proxy the test controls.

Runs on the fault suite's private cluster (faultkit.fault_cluster); run with ``-s`` for the figures.
"""

from __future__ import annotations

import time

import pytest

from faultkit import (
    RESYNC,
    Figure,
    Intended,
    Operators,
    apply,
    count_lost_duplicated,
    healthz,
    llm_body,
    make_namespace,
    proxied_kubeconfig,
    record,
    wait_converged,
    wait_rounds,
)
from faultproxy import FaultProxy
from helpers import wait_for
from private_cluster import PrivateCluster

pytestmark = pytest.mark.cluster
LOOP_ERRORS = "modelfleet_loop_errors_total"
RESYNC_ROUNDS = "modelfleet_resync_rounds_total"


def apiserver_ready(pc: PrivateCluster) -> bool:
    return pc.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0


def service_exists(pc: PrivateCluster, ns: str, name: str) -> bool:
    return any(s.metadata.name == name for s in pc.core.list_namespaced_service(ns).items)


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_restart_mid_rollout_converges_without_operator_restart(fc: PrivateCluster, ops, component: str) -> None:
    ns = make_namespace(fc, f"restart-{component}")
    op = ops.start("solo")
    pid = op.proc.pid
    names = [f"r{i}" for i in range(5)]
    apply(fc, ns, *(llm_body(n, replicas=2) for n in names))
    # Mid-rollout: the first Deployment exists, not every replica is ready yet.
    wait_for(lambda: fc.apps.list_namespaced_deployment(ns).items, timeout=30,
             message=f"the operator's first Deployment in {ns}; log:\n{op.log_tail()}")
    errors_before = op.metric(LOOP_ERRORS)

    t_stop = time.monotonic()
    fc.restart(component)  # SIGTERM, then the same command line again; returns once it is healthy
    t_back = time.monotonic()
    assert op.proc.poll() is None, f"the operator exited during the {component} restart:\n{op.log_tail()}"
    wait_for(lambda: apiserver_ready(fc), timeout=60, message=f"the apiserver ready after {component} came back")

    # A Service deleted as the API comes back (the operator's watches are still reconnecting).
    fc.kubectl("delete", "service", "r0", "-n", ns, "--wait=false")
    rounds_at_delete = op.metric(RESYNC_ROUNDS)
    t_del = time.monotonic()
    seen: dict[str, float] = {}

    def service_back_or_late() -> bool:
        rounds = op.metric(RESYNC_ROUNDS)  # read first: a round re-creates the Service before it counts
        seen["rounds"] = rounds - rounds_at_delete
        if service_exists(fc, ns, "r0"):
            seen["back"] = 1
            return True
        # A round in progress at the delete may have missed it; two full rounds after it may not.
        return rounds >= rounds_at_delete + 3

    wait_for(service_back_or_late, timeout=60, interval=0.1,
             message=f"Service r0 re-created; log:\n{op.log_tail()}")
    assert seen.get("back"), (f"Service r0 still missing after {seen['rounds']:g} resync rounds "
                              f"(allowed: the round in progress + 2); log:\n{op.log_tail()}")
    t_svc = time.monotonic() - t_del
    intended = {n: Intended(replicas=2, max_model_len=8192) for n in names}
    wait_converged(fc, ns, intended, timeout=90, context=op.log_tail())
    t_conv = time.monotonic() - t_back

    assert op.proc.poll() is None and op.proc.pid == pid, f"the operator restarted (exit {op.proc.returncode})"
    rounds = wait_rounds(op, 2, timeout=10 * RESYNC)  # the resync loop keeps going
    lost, dup = count_lost_duplicated(fc, ns, names)
    assert (lost, dup) == (0, 0)
    record(Figure(
        f"{component} restart mid-rollout", injected=1, converge=[t_conv], lost=lost, duplicated=dup,
        notes=f"outage {t_back - t_stop:.1f} s; Service r0 back {t_svc:.1f} s after its delete "
              f"({seen['rounds']:g} resync rounds); loop errors "
              f"{errors_before:g} -> {op.metric(LOOP_ERRORS):g}; resync rounds now {rounds:g}; same pid {pid}"))


def test_blackholed_apiserver_fails_healthz_then_converges(fc: PrivateCluster, ops: Operators) -> None:
    ns = make_namespace(fc, "blackhole")
    host, port = fc.server.removeprefix("https://").rsplit(":", 1)
    with FaultProxy((host, int(port))) as proxy:
        kubeconfig = proxied_kubeconfig(fc, proxy.port, fc.state_dir / f"kubeconfig-proxy-{ns}")
        # Leader election on, as deployed: a leader that cannot renew pauses its writes, keeps its pid.
        op = ops.start("bh", kubeconfig=kubeconfig)
        names = ["b0", "b1", "b2"]
        apply(fc, ns, *(llm_body(n, replicas=1) for n in names))
        intended = {n: Intended(replicas=1, max_model_len=8192) for n in names}
        wait_converged(fc, ns, intended, timeout=90, context=op.log_tail())
        assert healthz(op)[0] == 200
        errors_before = op.metric(LOOP_ERRORS)

        proxy.blackhole()
        t_hole = time.monotonic()
        # What happens meanwhile, straight to the apiserver (not through the proxy):
        fc.custom.patch_namespaced_custom_object("modelfleet.io", "v1alpha1", ns, "llmdeployments", "b0",
                                                 {"spec": {"replicas": 2}})
        fc.kubectl("delete", "service", "b1", "-n", ns, "--wait=false")
        intended["b0"] = Intended(replicas=2, max_model_len=8192)

        code, body = wait_for(lambda: (h := healthz(op))[0] not in (200, 0) and h, timeout=120, interval=0.5,
                              message=f"/healthz failing while the API is black-holed; log:\n{op.log_tail()}")
        t_detect = time.monotonic() - t_hole
        assert op.proc.poll() is None, "the operator died instead of reporting"
        errors_during = op.metric(LOOP_ERRORS)
        print(f"\nBLACK HOLE: /healthz {code} after {t_detect:.1f} s: {body}")

        proxy.forward()
        t_path = time.monotonic()
        wait_for(lambda: healthz(op)[0] == 200, timeout=120, interval=0.5,
                 message=f"/healthz 200 again once the path is back; log:\n{op.log_tail()}")
        t_healthy = time.monotonic() - t_path
        t_conv = wait_converged(fc, ns, intended, timeout=120, context=op.log_tail())
        t_conv = time.monotonic() - t_path
    lost, dup = count_lost_duplicated(fc, ns, names)
    assert (lost, dup) == (0, 0)
    assert op.proc.poll() is None, f"the operator exited (code {op.proc.returncode}) instead of recovering"
    record(Figure("apiserver connection black-holed", injected=1, converge=[t_conv], lost=lost, duplicated=dup,
                  notes=f"/healthz failed {t_detect:.1f} s into the black hole (status {code}), 200 again "
                        f"{t_healthy:.1f} s after the path came back; loop errors {errors_before:g} -> "
                        f"{errors_during:g}; proxy accepted {proxy.accepted} connections"))
