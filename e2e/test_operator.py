"""The operator against a real API server, scheduler, controllers and KWOK GPU nodes."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from helpers import Cluster, wait_for
from operator_fixture import RESYNC_SECONDS, OperatorProcess

pytestmark = pytest.mark.cluster
GROUP, VERSION, PLURAL = "modelfleet.io", "v1alpha1", "llmdeployments"
# Qwen2.5-0.5B's published config: small enough to fit anything, so these tests are about the control loop.
SMALL = {
    "numLayers": 24,
    "numAttentionHeads": 14,
    "numKeyValueHeads": 2,
    "headDim": 64,
    "parameters": 4.94e8,
    "maxPositionEmbeddings": 32768,
}


def manifest(name: str, **spec: Any) -> str:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "architecture": SMALL},
            "gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"},
            "engine": {"maxModelLen": 8192},
            **spec,
        },
    }
    return yaml.safe_dump(body)


def apply_llm(cluster: Cluster, ns: str, name: str, **spec: Any) -> None:
    """kubectl apply of one LLMDeployment built by manifest()."""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=manifest(name, **spec))


def get_llm(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
    return obj


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return dict(cond)
    return {}


def events(cluster: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}", "-o", "json")
    items: list[dict[str, Any]] = json.loads(out.stdout)["items"]
    return items


def ready(cluster: Cluster, ns: str, name: str, replicas: int) -> dict[str, Any] | None:
    obj = get_llm(cluster, ns, name)
    st = obj.get("status") or {}
    ok = (
        condition(obj, "Ready").get("status") == "True"
        and st.get("readyReplicas") == replicas
        and st.get("phase") == "Ready"
        and st.get("observedGeneration") == obj["metadata"]["generation"]
    )
    return obj if ok else None


def apply_and_wait_ready(
    cluster: Cluster, operator: OperatorProcess, ns: str, name: str, replicas: int, **spec: Any
) -> dict[str, Any]:
    apply_llm(cluster, ns, name, replicas=replicas, **spec)
    obj: dict[str, Any] = wait_for(
        lambda: ready(cluster, ns, name, replicas),
        timeout=90,
        message=f"llm/{name} Ready with {replicas} replicas; operator log:\n{operator.log_tail()}",
    )
    return obj


def test_apply_to_ready_with_children(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    started = time.monotonic()
    obj = apply_and_wait_ready(cluster, operator, namespace, "qwen", 2)
    print(f"apply -> Ready (2 replicas): {time.monotonic() - started:.1f} s")

    dep = cluster.apps.read_namespaced_deployment("qwen", namespace)
    args = dep.spec.template.spec.containers[0].args
    assert args[args.index("--tensor-parallel-size") + 1] == "1"
    assert args[args.index("--served-model-name") + 1] == "qwen"
    assert dep.metadata.owner_references[0].uid == obj["metadata"]["uid"]
    assert dep.spec.template.spec.node_selector == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    svc = cluster.core.read_namespaced_service("qwen", namespace)
    assert svc.spec.ports[0].port == 8000 and svc.spec.selector == {"modelfleet.io/deployment": "qwen"}

    pods = cluster.core.list_namespaced_pod(namespace, label_selector="modelfleet.io/deployment=qwen").items
    assert len(pods) == 2 and all(p.status.phase == "Running" for p in pods)
    assert all(p.spec.node_name in cluster.nodes for p in pods)

    # No finalizer: deleting an LLMDeployment never waits for the operator (it may be uninstalled).
    assert not obj["metadata"].get("finalizers"), obj["metadata"]["finalizers"]
    st = obj["status"]
    assert st["endpoint"] == f"http://qwen.{namespace}.svc:8000/v1"
    assert st["selector"] == "modelfleet.io/deployment=qwen"
    assert condition(obj, "Fits")["status"] == "True" and st["capacity"]["kvCacheTokens"] > 0
    reasons = {e["reason"] for e in events(cluster, namespace, "qwen")}
    assert {"CreatedDeployment", "CreatedService", "Ready"} <= reasons, reasons

    table = cluster.kubectl("get", "llm", "-n", namespace).stdout
    assert "qwen" in table and "Ready" in table and "hf://Qwen/Qwen2.5-0.5B-Instruct" in table, table


def object_reads(operator: OperatorProcess) -> float:
    """GETs of LLMDeployments and children, and LISTs of pods, the operator has sent (the Lease aside)."""
    gets = sum(operator.metric("modelfleet_kube_requests_total", verb="get", resource=r)
               for r in ("LLMDeployment", "Deployment", "Service"))
    return gets + operator.metric("modelfleet_kube_requests_total", verb="list", resource="Pod")


def test_noop_reconcile_writes_nothing(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    """Resyncs of a settled object write nothing: no status churn, no child updates, no Events; and read
    nothing from the API either (they read the watch cache): 0 GETs.

    (The operator-wide write counter is checked on a quiet fleet by bench/fleet; here other tests'
    namespaces may still be terminating, so the check is on this object's own resources.)"""
    apply_and_wait_ready(cluster, operator, namespace, "idle", 1)

    def versions() -> dict[str, Any]:
        return {
            "llm": get_llm(cluster, namespace, "idle")["metadata"]["resourceVersion"],
            "deployment": cluster.apps.read_namespaced_deployment("idle", namespace).metadata.resource_version,
            "service": cluster.core.read_namespaced_service("idle", namespace).metadata.resource_version,
            "events": sorted(e["metadata"]["name"] for e in events(cluster, namespace, "idle")),
        }

    def rounds_later(n: int) -> None:
        start = operator.metric("modelfleet_resync_rounds_total")
        wait_for(
            lambda: operator.metric("modelfleet_resync_rounds_total") >= start + n,
            timeout=RESYNC_SECONDS * (n + 4),
            message=f"{n} resync rounds",
        )

    # The rollout's last status write may still be on its way: settle, then compare across two rounds.
    rounds_later(1)
    before = versions()
    reconciles = operator.metric("modelfleet_reconciles_total", outcome="unchanged")
    reads = object_reads(operator)
    rounds_later(2)
    assert versions() == before, "a no-op resync wrote to the LLMDeployment, its children or Events"
    noops = operator.metric("modelfleet_reconciles_total", outcome="unchanged") - reconciles
    assert noops >= 2, f"expected at least 2 no-op reconciles (2 rounds), saw {noops}"
    read_now = object_reads(operator)
    assert read_now == reads, f"{read_now - reads:.0f} GETs/pod LISTs during {noops:.0f} no-op reconciles (want 0)"
    print(f"no-op reconciles observed: {noops:.0f}, writes to this object: 0, GETs: 0")


def test_spec_change_rolls_out(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    apply_and_wait_ready(cluster, operator, namespace, "roll", 1)
    cluster.kubectl(
        "patch", "llm", "roll", "-n", namespace, "--type=merge", "-p", '{"spec": {"engine": {"maxNumSeqs": 32}}}'
    )

    def rolled() -> bool:
        dep = cluster.apps.read_namespaced_deployment("roll", namespace)
        args = dep.spec.template.spec.containers[0].args
        return args[args.index("--max-num-seqs") + 1] == "32"

    wait_for(rolled, timeout=30, message="the new --max-num-seqs in the Deployment")
    obj = wait_for(lambda: ready(cluster, namespace, "roll", 1), timeout=90, message="Ready after the rollout")
    assert obj["metadata"]["generation"] == 2 and obj["status"]["observedGeneration"] == 2
    assert "UpdatedDeployment" in {e["reason"] for e in events(cluster, namespace, "roll")}


def test_operator_never_writes_spec(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    """What Argo CD compares stays as the user wrote it: spec and generation are untouched."""
    obj = apply_and_wait_ready(cluster, operator, namespace, "gitops", 1)
    assert obj["metadata"]["generation"] == 1
    managers = {m["manager"]: m for m in obj["metadata"].get("managedFields", [])}
    for name, entry in managers.items():
        if name.startswith("modelfleet") or name.startswith("python"):
            assert "f:spec" not in entry.get("fieldsV1", {}), f"{name} owns spec fields: {entry}"


def test_delete_removes_children(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    apply_and_wait_ready(cluster, operator, namespace, "gone", 1)
    cluster.kubectl("delete", "llm", "gone", "-n", namespace, "--wait=true", "--timeout=60s")

    def children_gone() -> bool:
        deps = cluster.apps.list_namespaced_deployment(namespace).items
        svcs = cluster.core.list_namespaced_service(namespace).items
        pods = cluster.core.list_namespaced_pod(namespace, label_selector="modelfleet.io/deployment=gone").items
        return not deps and not svcs and not pods

    wait_for(children_gone, timeout=60, message="garbage collection of the Deployment, Service and pods")


def test_deleted_child_is_recreated(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    apply_and_wait_ready(cluster, operator, namespace, "drift", 1)
    uid = cluster.apps.read_namespaced_deployment("drift", namespace).metadata.uid
    cluster.kubectl("delete", "deployment", "drift", "-n", namespace, "--wait=true")
    wait_for(
        lambda: cluster.apps.read_namespaced_deployment("drift", namespace).metadata.uid != uid,
        timeout=RESYNC_SECONDS * 6,
        message="the operator recreating the deleted Deployment",
    )


def test_not_enough_gpus_is_reported(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    # 16 GPUs per replica: more than any fake node has (8), so the scheduler leaves the pod Pending.
    big = dict(SMALL, numAttentionHeads=16, numKeyValueHeads=2)
    apply_llm(
        cluster, namespace, "greedy", gpu={"count": 16, "memoryGiB": 80}, model={"uri": "hf://x/y", "architecture": big}
    )

    def degraded() -> dict[str, Any] | None:
        cond = condition(get_llm(cluster, namespace, "greedy"), "Degraded")
        return cond if cond.get("reason") == "InsufficientGPUs" else None

    cond = wait_for(degraded, timeout=60, message=f"Degraded=InsufficientGPUs; log:\n{operator.log_tail()}")
    assert "nvidia.com/gpu" in cond["message"]
    warnings = [e for e in events(cluster, namespace, "greedy") if e["type"] == "Warning"]
    assert any(e["reason"] == "InsufficientGPUs" for e in warnings), warnings


def test_model_that_does_not_fit_is_not_rolled_out(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    apply_llm(cluster, namespace, "huge", model={"uri": "hf://meta-llama/Llama-3.1-70B-Instruct"})

    def refused() -> dict[str, Any] | None:
        obj = get_llm(cluster, namespace, "huge")
        return obj if condition(obj, "Fits").get("status") == "False" else None

    obj = wait_for(refused, timeout=30, message="Fits=False")
    assert "gpu.count" in condition(obj, "Fits")["message"]
    assert obj["status"]["phase"] == "DoesNotFit"
    assert cluster.apps.list_namespaced_deployment(namespace).items == []
    warning = [e for e in events(cluster, namespace, "huge") if e["reason"] == "DoesNotFit"]
    assert len(warning) == 1, warning
    assert warning[0]["type"] == "Warning" and "GiB" in warning[0]["message"]


def test_running_replicas_survive_a_spec_that_does_not_fit(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    apply_and_wait_ready(cluster, operator, namespace, "keep", 1)
    before = cluster.apps.read_namespaced_deployment("keep", namespace).metadata.annotations
    cluster.kubectl(
        "patch",
        "llm",
        "keep",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"model": {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct", "architecture": null}}}',
    )

    def held() -> dict[str, Any] | None:
        obj = get_llm(cluster, namespace, "keep")
        cond = condition(obj, "Progressing")
        return obj if cond.get("reason") == "RolloutHeld" and obj["status"]["observedGeneration"] == 2 else None

    obj = wait_for(held, timeout=30, message="Progressing=False/RolloutHeld")
    assert condition(obj, "Fits")["status"] == "False"
    assert condition(obj, "Ready")["status"] == "True"
    after = cluster.apps.read_namespaced_deployment("keep", namespace)
    assert after.metadata.annotations == before, "the Deployment was changed although the new spec does not fit"
    assert after.status.ready_replicas == 1
