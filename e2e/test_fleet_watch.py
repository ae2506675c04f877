"""Child watches filter by label on the API server: unrelated pods never reach the operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers import Cluster, wait_for
from operator_fixture import OperatorProcess, start_operator
from test_operator import apply_and_wait_ready

pytestmark = pytest.mark.cluster
FOREIGN_PODS = 12


def foreign_pod(name: str) -> dict[str, object]:
    """A pod with no modelfleet label, run by kwok (the fake nodes take any pod)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "unrelated"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:fake"}]},
    }


@pytest.fixture
def other_namespace(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A second watched namespace (t-*) that holds only unrelated pods."""
    name = f"{namespace}-other"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def test_unlabelled_pods_never_reach_the_operator(
    cluster: Cluster, operator: OperatorProcess, namespace: str, other_namespace: str
) -> None:
    unlabelled = operator.metric("modelfleet_watch_unlabelled_objects_total")
    received = operator.metric("modelfleet_watch_objects_received_total", kind="pod")
    # Unrelated pods in the model's own namespace and in another watched one, all running.
    for i in range(FOREIGN_PODS):
        cluster.core.create_namespaced_pod(other_namespace if i % 2 else namespace, foreign_pod(f"web-{i}"))

    def running() -> bool:
        pods = [*cluster.core.list_namespaced_pod(namespace, label_selector="app=unrelated").items,
                *cluster.core.list_namespaced_pod(other_namespace, label_selector="app=unrelated").items]
        return len(pods) == FOREIGN_PODS and all(p.status.phase == "Running" for p in pods)

    wait_for(running, timeout=60, message=f"{FOREIGN_PODS} unrelated pods Running")
    apply_and_wait_ready(cluster, operator, namespace, "labelled", 1)
    got = operator.metric("modelfleet_watch_objects_received_total", kind="pod") - received
    # The model's one pod arrives (created, scheduled, running, ready: a few events) ...
    assert got >= 1, "the operator's pod watch saw nothing of the model's pod"
    # ... and none of the unrelated ones: a client-side filter would have received and dropped them.
    assert operator.metric("modelfleet_watch_unlabelled_objects_total") == unlabelled, (
        "objects without the modelfleet label reached the operator"
    )
    # Each unrelated pod alone would bring >= 3 events (create, bind, running); 12 of them at least 36.
    assert got < 3 * FOREIGN_PODS, f"{got:.0f} pod events received for one model pod"
    print(f"pod objects received by the operator: {got:.0f} (unrelated pods created: {FOREIGN_PODS})")


def test_a_restarted_operator_writes_nothing_for_unchanged_objects(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    """A second operator (its own Lease, only this namespace) starts over a Ready object: its watches LIST
    the children, kopf resumes the object, a resync round runs, and not one child or status write is sent."""
    apply_and_wait_ready(cluster, operator, namespace, "steady", 1)
    fresh = start_operator(cluster.kubeconfig, cluster.state_dir / "logs" / f"operator-{namespace}.log",
                           namespaces=namespace, resync_seconds="2", metrics_mode="off", log_level="info")
    try:
        wait_for(lambda: fresh.metric("modelfleet_resync_rounds_total") >= 2, timeout=60,
                 message=f"two resync rounds of the second operator; log:\n{fresh.log_tail()}")
        unchanged = fresh.metric("modelfleet_reconciles_total", outcome="unchanged")
        assert unchanged >= 2, f"{unchanged:.0f} unchanged reconciles; log:\n{fresh.log_tail()}"
        # Its own Lease is the one write it must make (leader election), not a write about the object.
        writes = fresh.kube_writes() - fresh.metric("modelfleet_kube_requests_total", verb="create", resource="Lease")
        assert writes == 0, f"the second operator sent {writes:.0f} writes for an unchanged object:\n{fresh.log_tail()}"
    finally:
        fresh.proc.terminate()
        fresh.proc.wait(timeout=20)
