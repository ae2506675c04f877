"""Hostile input on the real API server (issue 10): CRD refusals, PodSecurity `restricted`, and the
admission policy that narrows the operator's ServiceAccount to the objects modelfleet manages."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import Cluster, wait_for
from operator_fixture import OperatorProcess, start_operator
from test_operator import apply_llm, condition, events, get_llm, ready
from test_rbac import token_kubeconfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
from test_hostile import CASES, body

pytestmark = pytest.mark.cluster
CHART = Path(__file__).resolve().parents[1] / "charts" / "modelfleet"


@pytest.mark.parametrize("case", CASES["refused"], ids=[c["id"] for c in CASES["refused"]])
def test_api_server_refuses_hostile_input(cluster: Cluster, crd: Path, namespace: str, case: dict[str, Any]) -> None:
    obj = body(case)
    obj["metadata"].pop("namespace")
    res = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
    assert res.returncode != 0, f"the API server accepted {case['id']}: {res.stdout}"
    assert case["field"] in res.stderr, res.stderr
    assert cluster.kubectl("get", "llm", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_api_server_accepts_ordinary_input(cluster: Cluster, crd: Path, namespace: str) -> None:
    for case in CASES["accepted"]:
        obj = body(case)
        obj["metadata"].pop("namespace")
        res = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(obj),
                              check=False)
        assert res.returncode == 0, f"{case['id']} refused: {res.stderr}"


def restrict(cluster: Cluster, namespace: str) -> None:
    """Enforce the PodSecurity `restricted` level in a namespace (the built-in admission plugin)."""
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                    "pod-security.kubernetes.io/enforce-version=latest", "--overwrite")


def test_restricted_namespace_admits_podsecurity_restricted(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    restrict(cluster, namespace)
    apply_llm(cluster, namespace, "locked", replicas=1, podSecurity="restricted")
    wait_for(lambda: ready(cluster, namespace, "locked", 1), timeout=90,
             message=f"llm/locked Ready in a restricted namespace; operator log:\n{operator.log_tail()}")
    pod = cluster.core.list_namespaced_pod(namespace, label_selector="modelfleet.io/deployment=locked").items[0]
    assert pod.spec.security_context.run_as_non_root is True
    assert pod.spec.containers[0].security_context.capabilities.drop == ["ALL"]


def test_restricted_namespace_refuses_default_pods_and_says_so(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    restrict(cluster, namespace)
    apply_llm(cluster, namespace, "rooted", replicas=1)

    def degraded() -> dict[str, Any] | None:
        cond = condition(get_llm(cluster, namespace, "rooted"), "Degraded")
        return cond if cond.get("status") == "True" and "PodSecurity" in cond.get("message", "") else None

    cond = wait_for(degraded, timeout=90, message=f"Degraded naming PodSecurity; log:\n{operator.log_tail()}")
    assert cond["reason"] == "FailedCreate" and "spec.podSecurity: restricted" in cond["message"], cond
    assert cluster.core.list_namespaced_pod(namespace, label_selector="modelfleet.io/deployment=rooted").items == []


def chart_identity(cluster: Cluster, namespace: str, release: str, *values: str) -> tuple[str, str]:
    """Apply the chart's ServiceAccount, RBAC and admission policy in `namespace`; returns the
    ServiceAccount's name and the Lease it may elect a leader on."""
    rendered = cluster.helm("template", release, str(CHART), "-n", namespace, "--set", "crds.enabled=false",
                            *values).stdout
    wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
              "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in wanted]
    kinds = {d["kind"] for d in docs}
    assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= kinds, "the chart ships the policy"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))
    (sa,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    (lease_role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader-election")]
    (lease,) = {n for rule in lease_role["rules"] for n in rule.get("resourceNames", [])}
    return sa, lease


def foreign_deployment(name: str) -> str:
    """A Deployment nobody asked modelfleet to manage (as another team's workload would be)."""
    return yaml.safe_dump({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "registry.example/app:1"}]}},
        },
    })


@pytest.fixture
def policy_namespace(cluster: Cluster) -> Any:
    """A namespace of its own (not watched by the session operator), removed afterwards with the policy."""
    name = f"vap-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    release = f"vap-{uuid.uuid4().hex[:5]}"
    yield name, release
    cluster.kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy",
                    "-l", f"app.kubernetes.io/instance={release}", "--ignore-not-found", check=False)
    cluster.kubectl("delete", "clusterrole,clusterrolebinding", "-l", f"app.kubernetes.io/instance={release}",
                    "--ignore-not-found", check=False)
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def test_admission_policy_confines_the_operator_to_managed_objects(
    cluster: Cluster, crd: Path, policy_namespace: tuple[str, str], tmp_path: Path
) -> None:
    ns, release = policy_namespace
    # Cluster-wide RBAC first: it allows writes in kube-system, which only the policy then refuses.
    sa, lease = chart_identity(cluster, ns, release)
    user = f"system:serviceaccount:{ns}:{sa}"
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=foreign_deployment("other-team"))
    # Also outside its namespace: kube-system is where a stolen token would do the most harm.
    cluster.kubectl("apply", "-n", "kube-system", "-f", "-", input=foreign_deployment(f"sys-{release}"))

    def as_operator(*args: str) -> Any:
        return cluster.kubectl("--as", user, *args, check=False)

    # RBAC allows all of these; the policy (loaded asynchronously by the API server) must refuse them.
    def refused_by_policy() -> Any:
        res = as_operator("patch", "deployment", "other-team", "-n", ns, "--type=merge",
                          "-p", '{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"evil:1"}]}}}}')
        return res if res.returncode != 0 and "managed-by=modelfleet" in res.stderr else None

    res = wait_for(refused_by_policy, timeout=30, message="the admission policy refusing a foreign patch")
    assert "ValidatingAdmissionPolicy" in res.stderr, res.stderr
    attempts = {
        "scale a foreign Deployment": ("scale", "deployment", "other-team", "-n", ns, "--replicas=0"),
        "adopt a foreign Deployment by labelling it": (
            "label", "deployment", "other-team", "-n", ns,
            "app.kubernetes.io/managed-by=modelfleet", "modelfleet.io/deployment=other-team"),
        "patch kube-system": ("patch", "deployment", f"sys-{release}", "-n", "kube-system", "--type=merge",
                              "-p", '{"spec":{"replicas":0}}'),
        "create an unlabelled Deployment": ("create", "deployment", "planted", "-n", ns, "--image=evil:1"),
        # RBAC allows PVC and Job deletes and creates for the model cache; the policy keeps them to caches.
        "delete another team's volume": ("delete", "pvc", "other-team-data", "-n", ns),
        "start an unlabelled Job": ("create", "job", "planted", "-n", ns, "--image=evil:1"),
    }
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "other-team-data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
    for what, args in attempts.items():
        res = as_operator(*args)
        assert res.returncode != 0 and "ValidatingAdmissionPolicy" in res.stderr, f"{what}: {res.stdout}{res.stderr}"
    assert cluster.apps.read_namespaced_deployment("other-team", ns).spec.replicas == 1
    kept = cluster.core.read_namespaced_persistent_volume_claim("other-team-data", ns)
    assert kept.metadata.deletion_timestamp is None
    # A model cache's volume (labelled as the operator labels it) may be created and deleted.
    cache_claim = yaml.safe_dump({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "cache-x", "labels": {"app.kubernetes.io/managed-by": "modelfleet",
                                                   "modelfleet.io/cache": "c0ffee1234"}},
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}}})
    for args in (("create", "-n", ns, "-f", "-"), ("delete", "pvc", "cache-x", "-n", ns, "--wait=false")):
        res = cluster.kubectl("--as", user, *args, check=False, input=cache_claim if args[0] == "create" else None)
        assert res.returncode == 0, f"{args[0]} a cache PVC: {res.stderr}"

    # The operator itself, holding only its ServiceAccount's token, still does its whole job (namespaced
    # install, so that it leaves the other tests' namespaces alone).
    chart_identity(cluster, ns, release, "--set", f"watchNamespaces={{{ns}}}")
    kubeconfig = token_kubeconfig(cluster, ns, sa, tmp_path / "operator.kubeconfig")
    op = start_operator(str(kubeconfig), tmp_path / "operator.log", metrics_mode="off", resync_seconds="5",
                        namespaces=ns, log_level="info", lease_namespace=ns, lease_name=lease)
    try:
        apply_llm(cluster, ns, "managed", replicas=1)
        wait_for(lambda: ready(cluster, ns, "managed", 1), timeout=90,
                 message=f"Ready under the admission policy; operator log:\n{op.log_tail()}")
        assert "Forbidden" not in op.log.read_text() and "ValidatingAdmissionPolicy" not in op.log.read_text()
        # What the pod-deletion-cost and autoscaler writes do, on managed objects: allowed. (The pod first:
        # after a scale the operator's reconcile may already be deleting one.)
        pod = cluster.core.list_namespaced_pod(ns, label_selector="modelfleet.io/deployment=managed").items[0]
        res = as_operator("annotate", "pod", pod.metadata.name, "-n", ns,
                          "controller.kubernetes.io/pod-deletion-cost=1", "--overwrite")
        assert res.returncode == 0, res.stderr
        res = as_operator("scale", "deployment", "managed", "-n", ns, "--replicas=2")
        assert res.returncode == 0, res.stderr
    finally:
        op.proc.terminate()
        op.proc.wait(timeout=20)
        cluster.kubectl("delete", "deployment", f"sys-{release}", "-n", "kube-system", "--ignore-not-found",
                        check=False)
    llm = get_llm(cluster, ns, "managed")
    assert condition(llm, "Ready").get("status") == "True", llm.get("status")


def test_args_past_the_crd_are_refused_at_reconcile_and_running_replicas_stay(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    apply_llm(cluster, namespace, "sneaky", replicas=1, engine={"maxModelLen": 8192, "args": ["--enforce-eager"]})
    wait_for(lambda: ready(cluster, namespace, "sneaky", 1), timeout=90,
             message=f"llm/sneaky Ready; operator log:\n{operator.log_tail()}")
    before = cluster.apps.read_namespaced_deployment("sneaky", namespace).spec.template.spec.containers[0].args
    # A prefix of a free option passes the CRD (it only knows the owned ones); vLLM 0.32.0's table does not.
    apply_llm(cluster, namespace, "sneaky", replicas=1,
              engine={"maxModelLen": 8192, "args": ["--enforce-eager", "--enable-chunk"]})

    def refused() -> dict[str, Any] | None:
        cond = condition(get_llm(cluster, namespace, "sneaky"), "Fits")
        return cond if cond.get("status") == "False" and "spec.engine.args[1]" in cond.get("message", "") else None

    cond = wait_for(refused, timeout=60, message=f"Fits=False naming spec.engine.args[1]; log:\n{operator.log_tail()}")
    assert "--enable-chunk" in cond["message"] and "write the option in full" in cond["message"], cond
    warnings = [e for e in events(cluster, namespace, "sneaky") if e["type"] == "Warning"]
    assert any("spec.engine.args[1]" in e["message"] for e in warnings), warnings
    progressing = condition(get_llm(cluster, namespace, "sneaky"), "Progressing")
    assert progressing.get("reason") == "RolloutHeld", progressing
    after = cluster.apps.read_namespaced_deployment("sneaky", namespace).spec.template.spec.containers[0].args
    assert after == before and "--enable-chunk" not in after
