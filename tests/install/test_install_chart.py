"""The Helm chart, rendered by the pinned helm: CRD equal to crds/, values schema, RBAC, hardening."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import yaml
from installkit import (
    CHART,
    CRD_FILE,
    ROOT,
    by_kind,
    helm,
    needs_helm,
    objects,
    one,
    render,
    without_chart_annotations,
)

pytestmark = needs_helm


def test_helm_lint_strict_is_clean() -> None:
    res = helm("lint", "--strict", str(CHART), check=False)
    problems = [ln for ln in res.stdout.splitlines() if "[WARNING]" in ln or "[ERROR]" in ln]
    assert res.returncode == 0 and not problems, f"helm lint --strict:\n{res.stdout}\n{res.stderr}"


def test_generated_files_are_up_to_date() -> None:
    """Chart CRD template, manifests/ and the argocd-cm patch all match their sources."""
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "generate.py"), "--check"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"generated files drifted:\n{res.stdout}{res.stderr}"


def test_chart_crd_equals_crds_dir() -> None:
    crd = one(objects(), "CustomResourceDefinition")
    want = yaml.safe_load(CRD_FILE.read_text())
    assert without_chart_annotations(crd) == want, (
        "the chart's CRD differs from crds/ (beyond the chart's annotations): run `make generate`")


@pytest.mark.parametrize(
    ("values", "present", "keep"),
    [([], True, True), (["--set", "crds.keep=false"], True, False), (["--set", "crds.enabled=false"], False, False)],
    ids=["default", "keep-false", "disabled"],
)
def test_crd_gating(values: list[str], present: bool, keep: bool) -> None:
    crds = by_kind(objects(*values), "CustomResourceDefinition")
    assert bool(crds) == present, f"{values}: CRD rendered={bool(crds)}, expected {present}"
    if crds:
        annotations = crds[0]["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/sync-wave"] == "-1", annotations
        assert (annotations.get("helm.sh/resource-policy") == "keep") == keep, annotations


BAD_VALUES = [
    (["--set", "replicaCount=2"], "replicaCount"),
    (["--set", "image.tagg=0.2.0"], "tagg"),
    (["--set", "logLevel=verbose"], "logLevel"),
    (["--set", "metrics.mode=push"], "mode"),
    (["--set", "podMonitor.enabled=yes"], "enabled"),
    (["--set", "watchNamespaces[0]=Team_A"], "watchNamespaces"),
    (["--set", "networkPolicy.clients.namespaceSelector.matchLabelz.team=a"], "matchLabelz"),
    (["--set", "image.digest=latest"], "digest"),
]


@pytest.mark.parametrize(("values", "key"), BAD_VALUES, ids=[v[1] for v in BAD_VALUES])
def test_schema_rejects_bad_value_naming_the_key(values: list[str], key: str) -> None:
    res = render(*values, check=False)
    assert res.returncode != 0, f"helm accepted {values}; the schema should refuse it"
    assert key in res.stderr, f"helm refused {values} but its message does not name {key!r}:\n{res.stderr}"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["--set", "metrics.mode=prometheus"], "metrics.mode=prometheus needs prometheus.url"),
        (["--set", "networkPolicy.enabled=true"], "networkPolicy.enabled needs the namespaces"),
        (["--set", "leaderElection.renewDeadlineSeconds=12"], "retryPeriodSeconds < renewDeadlineSeconds"),
    ],
    ids=["prometheus-without-url", "networkpolicy-without-namespaces", "lease-deadline-after-duration"],
)
def test_inconsistent_values_fail_with_a_hint(values: list[str], expected: str) -> None:
    res = render(*values, check=False)
    assert res.returncode != 0 and expected in res.stderr, f"{values}: exit {res.returncode}\n{res.stderr}"


def rules_of(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj.get("rules", [])


def test_rbac_has_no_wildcards_secrets_or_deletes() -> None:
    for values in ([], ["--set", "watchNamespaces={team-a,team-b}"]):
        for role in by_kind(objects(*values), "ClusterRole") + by_kind(objects(*values), "Role"):
            for rule in rules_of(role):
                flat = rule["apiGroups"] + rule["resources"] + rule["verbs"]
                assert "*" not in flat, f"{role['kind']} {values}: wildcard in {rule}"
                assert "secrets" not in rule["resources"], f"{role['kind']} {values}: reads Secrets: {rule}"
                assert "deletecollection" not in rule["verbs"], f"deletes collections: {rule}"
                if "delete" in rule["verbs"]:
                    # The one exception: a shared model cache (PVC + download Job, no owner reference)
                    # whose last user asked for reclaim: Delete.
                    assert set(rule["resources"]) <= {"persistentvolumeclaims", "jobs"}, f"deletes: {rule}"


def test_every_rbac_rule_is_commented_with_why() -> None:
    lines = (CHART / "templates" / "rbac.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("- apiGroups:"):
            assert lines[i - 1].lstrip().startswith("#"), f"rbac.yaml:{i + 1} has no comment saying why: {line}"


LEASE_ROLE = "-leader-election"


def test_cluster_mode_one_clusterrole_with_everything() -> None:
    objs = objects()
    role = one(objs, "ClusterRole")
    resources = {r for rule in rules_of(role) for r in rule["resources"]}
    assert {"llmdeployments", "llmdeployments/status", "deployments", "deployments/scale", "services", "pods",
            "events", "customresourcedefinitions"} <= resources, resources
    assert "namespaces" not in resources, "cluster-wide kopf does not watch namespaces"
    assert "leases" not in resources, "Leases are granted in the operator's namespace only"
    roles = [r["metadata"]["name"] for r in by_kind(objs, "Role")]
    assert all(n.endswith(LEASE_ROLE) for n in roles) and one(objs, "ClusterRoleBinding"), roles


@pytest.mark.parametrize("values", [[], ["--set", "watchNamespaces={team-a,team-b}"]], ids=["cluster", "namespaced"])
def test_lease_rbac_is_the_operators_own_lease_in_its_own_namespace(values: list[str]) -> None:
    objs = objects(*values)
    (role,) = [r for r in by_kind(objs, "Role") if r["metadata"]["name"].endswith(LEASE_ROLE)]
    dep = one(objs, "Deployment")
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert role["metadata"]["namespace"] == dep["metadata"]["namespace"], "the Lease Role is in the release namespace"
    rules = {tuple(r["verbs"]): r for r in rules_of(role)}
    assert set(rules) == {("create",), ("get", "update")}, rules
    assert rules[("create",)]["resources"] == ["leases"] and "resourceNames" not in rules[("create",)]
    assert rules[("get", "update")]["resourceNames"] == [env["MODELFLEET_LEASE_NAME"]], (rules, env)
    assert all(r["apiGroups"] == ["coordination.k8s.io"] for r in rules_of(role))
    (binding,) = [b for b in by_kind(objs, "RoleBinding") if b["metadata"]["name"].endswith(LEASE_ROLE)]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == dep["spec"]["template"]["spec"]["serviceAccountName"]


def test_namespaced_mode_roles_per_namespace() -> None:
    objs = objects("--set", "watchNamespaces={team-a,team-b}")
    roles = {r["metadata"]["namespace"]: r for r in by_kind(objs, "Role")
             if not r["metadata"]["name"].endswith(LEASE_ROLE)}
    bindings = {b["metadata"]["namespace"] for b in by_kind(objs, "RoleBinding")
                if not b["metadata"]["name"].endswith(LEASE_ROLE)}
    assert set(roles) == bindings == {"team-a", "team-b"}, (set(roles), bindings)
    cluster = {r for rule in rules_of(one(objs, "ClusterRole")) for r in rule["resources"]}
    # storageclasses: get only, so that a model cache naming a missing class is reported with the API's message.
    assert cluster == {"customresourcedefinitions", "namespaces", "storageclasses"}, f"namespaced mode: {cluster}"
    container = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELFLEET_NAMESPACES"] == "team-a,team-b", env


def test_operator_deployment_is_hardened() -> None:
    dep = one(objects(), "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    sc = container["securityContext"]
    checks = {
        # Two pods, one leader (Lease); a rolling update is safe because the new pod waits as standby.
        "replicas 2": dep["spec"]["replicas"] == 2,
        "RollingUpdate": dep["spec"]["strategy"]["type"] == "RollingUpdate",
        "runAsNonRoot": pod["securityContext"]["runAsNonRoot"] is True and sc["runAsNonRoot"] is True,
        "runAsUser 65532": sc["runAsUser"] == 65532 == pod["securityContext"]["runAsUser"],
        "readOnlyRootFilesystem": sc["readOnlyRootFilesystem"] is True,
        "no privilege escalation": sc["allowPrivilegeEscalation"] is False,
        "drop ALL": sc["capabilities"] == {"drop": ["ALL"]},
        "seccomp RuntimeDefault": pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"},
        "liveness on /healthz": container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"},
        "resources": bool(container["resources"].get("requests")) and bool(container["resources"].get("limits")),
        "/tmp emptyDir": {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"],
        "image tag = appVersion": container["image"] == "ghcr.io/modelfleet/modelfleet:0.1.0",
    }
    failed = [name for name, ok in checks.items() if not ok]
    assert not failed, f"operator Deployment fails: {failed}\n{yaml.safe_dump(dep)}"


@pytest.mark.parametrize(
    ("values", "env_name", "value"),
    [
        (["--set", "logLevel=debug"], "MODELFLEET_LOG_LEVEL", "debug"),
        (["--set", "metrics.mode=prometheus", "--set", "prometheus.url=http://prom:9090"],
         "MODELFLEET_PROMETHEUS_URL", "http://prom:9090"),
        (["--set", "metrics.mode=off"], "MODELFLEET_METRICS_MODE", "off"),
    ],
    ids=["log-level", "prometheus-url", "metrics-off"],
)
def test_values_reach_the_operator_env(values: list[str], env_name: str, value: str) -> None:
    container = one(objects(*values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[env_name] == value, env


def test_podmonitor_relabels_the_deployment_label() -> None:
    objs = objects("--set", "podMonitor.enabled=true")
    monitors = {m["metadata"]["name"]: m for m in by_kind(objs, "PodMonitor")}
    vllm = monitors["modelfleet-vllm"]["spec"]
    endpoint = vllm["podMetricsEndpoints"][0]
    relabel = {(tuple(r["sourceLabels"]), r["targetLabel"]) for r in endpoint["relabelings"]}
    assert (("__meta_kubernetes_pod_label_modelfleet_io_deployment",), "modelfleet_io_deployment") in relabel
    assert (("__meta_kubernetes_namespace",), "namespace") in relabel
    assert endpoint["port"] == "http" and endpoint["path"] == "/metrics", endpoint
    assert vllm["selector"]["matchExpressions"][0]["key"] == "modelfleet.io/deployment"
    assert "modelfleet-operator" in monitors, "the operator's own /metrics should be scraped too"


def test_networkpolicy_per_model_namespace() -> None:
    objs = objects("--set", "networkPolicy.enabled=true", "--set", "watchNamespaces={team-a,team-b}")
    policies = by_kind(objs, "NetworkPolicy")
    assert sorted(p["metadata"]["namespace"] for p in policies) == ["team-a", "team-b"]
    spec = policies[0]["spec"]
    assert spec["podSelector"]["matchExpressions"][0] == {"key": "modelfleet.io/deployment", "operator": "Exists"}
    assert all(rule["ports"] == [{"port": 8000, "protocol": "TCP"}] for rule in spec["ingress"]), spec["ingress"]
    sources = [rule["from"][0]["namespaceSelector"]["matchLabels"] for rule in spec["ingress"]]
    assert {"modelfleet.io/llm-clients": "true"} in sources, "clients' namespaces must be admitted to /v1"
    assert {"kubernetes.io/metadata.name": "monitoring"} in sources, "Prometheus must reach /metrics"
    assert {"kubernetes.io/metadata.name": "modelfleet-system"} in sources, "scrape mode: the operator reads /metrics"
