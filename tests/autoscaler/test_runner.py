"""The operator side of the autoscaler: registry views -> targets, and the actuator's status writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from modelfleet.autoscaler.runner import KubeActuator, merge_conditions, target_for
from modelfleet.kube import KubeError
from modelfleet.registry import Registry, View

NOW = 1_800_000_000.0


def llm(enabled: bool = True, rv: str = "1", conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "namespace": "n", "resourceVersion": rv, "uid": "llm-uid"},
        "spec": {"model": {"uri": "hf://a/b"}, "autoscaling": {"enabled": enabled, "maxReplicas": 8}},
        "status": {"conditions": conditions or []},
    }


def owned_by(uid: str) -> list[dict[str, Any]]:
    return [{"uid": uid, "controller": True}]


def pod(name: str, ready: bool, unschedulable: bool = False, age: float = 30, ip: str = "10.0.0.1",
        owner: str = "rs-uid") -> dict[str, Any]:
    conds = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conds.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    created = dt.datetime.fromtimestamp(NOW - age, dt.UTC)
    return {"metadata": {"name": name, "creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "ownerReferences": owned_by(owner)},
            "status": {"conditions": conds, "podIP": ip}}


DEPLOYMENT = {"metadata": {"uid": "dep-uid", "ownerReferences": owned_by("llm-uid")},
              "spec": {"replicas": 4}, "status": {"readyReplicas": 2}}
# The operator's ReplicaSet, and one a namespace user made with the same labels.
REPLICASETS = [{"metadata": {"uid": "rs-uid", "ownerReferences": owned_by("dep-uid")}},
               {"metadata": {"uid": "fake-rs-uid", "ownerReferences": owned_by("fake-dep-uid")}}]


@pytest.mark.parametrize(
    ("view", "expect"),
    [
        (View(llm(enabled=False), DEPLOYMENT, []), None),
        (View(llm(), None, []), None),
        (View(llm(), DEPLOYMENT, [pod("a", True), pod("b", True), pod("c", False, age=100),
                                  pod("d", False, unschedulable=True)], REPLICASETS),
         {"replicas": 4, "ready_replicas": 2, "unschedulable": 1, "unready_seconds": 100.0, "urls": 2}),
        # Look-alikes: a ready pod of another ReplicaSet, a bare labelled pod, a stuck one: none counts.
        (View(llm(), DEPLOYMENT, [pod("a", True), pod("x", True, owner="fake-rs-uid"), pod("y", True, owner=""),
                                  pod("z", False, unschedulable=True, owner="fake-rs-uid")], REPLICASETS),
         {"replicas": 4, "ready_replicas": 2, "unschedulable": 0, "unready_seconds": None, "urls": 1}),
    ],
    ids=["disabled", "not-deployed", "mixed-pods", "look-alike-pods"],
)
def test_target_for(view: View, expect: dict[str, Any] | None) -> None:
    target = target_for(view, NOW)
    if expect is None:
        assert target is None
        return
    assert target is not None
    got = {"replicas": target.replicas, "ready_replicas": target.ready_replicas, "unschedulable": target.unschedulable,
           "unready_seconds": target.unready_seconds, "urls": len(target.pod_urls)}
    assert got == expect


def test_merge_conditions_replaces_only_the_autoscalers() -> None:
    current = [{"type": "Ready", "status": "True"}, {"type": "MetricsAvailable", "status": "True"}]
    ours = [{"type": "MetricsAvailable", "status": "False"}, {"type": "ScalingLimited", "status": "False"},
            {"type": "Ready", "status": "False"}]
    merged = {c["type"]: c["status"] for c in merge_conditions(current, ours)}
    assert merged == {"Ready": "True", "MetricsAvailable": "False", "ScalingLimited": "False"}


def test_merged_conditions_keep_the_reconcilers_order() -> None:
    # The reconciler writes Ready, Progressing, Degraded, Fits, ScalingLimited, MetricsAvailable (status.py);
    # a list in another order would look changed to it and be written again only to reorder it.
    current = [{"type": t, "status": "True"} for t in ("Ready", "Progressing", "Degraded", "Fits")]
    ours = [{"type": "MetricsAvailable", "status": "True"}, {"type": "ScalingLimited", "status": "False"}]
    merged = [c["type"] for c in merge_conditions(current, ours)]
    assert merged == ["Ready", "Progressing", "Degraded", "Fits", "ScalingLimited", "MetricsAvailable"]


class RecordingKube:
    """A named fake of modelfleet.kube.Kube: status writes bump the resourceVersion (409 on a stale one)
    and return the object as written, like the API server; `order` logs what happened when."""

    def __init__(self, rv: int, order: list[str]) -> None:
        self.rv, self.order = rv, order
        self.scaled: list[int] = []

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
                     ) -> dict[str, Any]:
        if resource_version is not None and resource_version != str(self.rv):
            raise KubeError("409 Conflict", 409, retryable=True)
        self.rv += 1
        self.order.append(f"status {sorted(patch)}")
        return llm(rv=str(self.rv))

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        self.scaled.append(replicas)

    def get_llm(self, namespace: str, name: str) -> dict[str, Any]:
        raise AssertionError("no read needed: the registry holds our own last write")


def test_scale_then_status_write_needs_no_read_and_meets_no_conflict() -> None:
    # desiredReplicas (rv 1 -> 2), then status.autoscaler with rv 2: the registry learnt the first write.
    registry = Registry()
    registry.observe_llm({"type": "ADDED", "object": llm(rv="1")})
    kube = RecordingKube(1, [])
    actuator = KubeActuator(kube, registry)  # type: ignore[arg-type]
    asyncio.run(actuator.scale("n", "m", 4))
    asyncio.run(actuator.write_status("n", "m", {"decision": "scale-up"}, 4, []))
    assert kube.scaled == [4] and kube.rv == 3
    held = registry.get_llm("n", "m")
    assert held is not None and held["metadata"]["resourceVersion"] == "3"


def test_status_write_waits_for_a_running_reconcile_of_the_object() -> None:
    order: list[str] = []
    lock = threading.Lock()

    @contextmanager
    def turn(namespace: str, name: str, wait: float) -> Iterator[None]:
        with lock:
            yield

    registry = Registry()
    registry.observe_llm({"type": "ADDED", "object": llm(rv="1")})
    actuator = KubeActuator(RecordingKube(1, order), registry, turn)  # type: ignore[arg-type]
    lock.acquire()  # a reconcile holds the object
    writer = threading.Thread(target=asyncio.run, args=(actuator.write_status("n", "m", {}, 2, []),))
    writer.start()
    writer.join(timeout=0.3)
    order.append("reconcile done")
    lock.release()
    writer.join(timeout=5)
    assert order == ["reconcile done", "status ['autoscaler', 'conditions', 'desiredReplicas']"]


class ConflictOnceKube:
    """A named fake of modelfleet.kube.Kube: the first status write conflicts, as after our own write."""

    def __init__(self) -> None:
        self.writes: list[tuple[dict[str, Any], str | None]] = []

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None) -> None:
        if resource_version == "1":
            raise KubeError("409 Conflict", 409, retryable=True)
        self.writes.append((patch, resource_version))

    def get_llm(self, namespace: str, name: str) -> dict[str, Any]:
        return llm(rv="2", conditions=[{"type": "Ready", "status": "True", "reason": "ReplicasReady"}])


def test_status_write_retries_on_a_fresh_body_after_a_conflict() -> None:
    registry = Registry()
    registry.observe_llm({"type": "ADDED", "object": llm(rv="1")})
    kube = ConflictOnceKube()
    actuator = KubeActuator(kube, registry)  # type: ignore[arg-type]
    conds = [{"type": "MetricsAvailable", "status": "True", "reason": "MetricsFound"}]
    asyncio.run(actuator.write_status("n", "m", {"decision": "scale-up"}, 3, conds))
    ((patch, rv),) = kube.writes
    assert rv == "2" and patch["desiredReplicas"] == 3
    assert {c["type"] for c in patch["conditions"]} == {"Ready", "MetricsAvailable"}


def test_never_created_pods_are_counted_and_aged_from_the_failure() -> None:
    failed_since = dt.datetime.fromtimestamp(NOW - 900, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    deployment = {
        "metadata": {"uid": "dep-uid", "ownerReferences": owned_by("llm-uid")},
        "spec": {"replicas": 4},
        "status": {"readyReplicas": 1, "conditions": [
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
             "message": 'pods "m-1" is forbidden: exceeded quota: gpus', "lastTransitionTime": failed_since}]},
    }
    target = target_for(View(llm(), deployment, [pod("a", True)], REPLICASETS), NOW)
    assert target is not None
    # 4 wanted - 1 pod that exists = 3 never created; aged 900 s from the condition, like unready pods.
    assert (target.not_created, target.unready_seconds) == (3, 900.0)
    assert target.not_created_reason.startswith("FailedCreate: ") and "exceeded quota" in target.not_created_reason


def test_missing_pods_without_a_failure_are_just_not_created_yet() -> None:
    target = target_for(View(llm(), DEPLOYMENT, [pod("a", True)], REPLICASETS), NOW)
    assert target is not None and target.not_created == 0
