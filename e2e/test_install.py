"""Install paths against the local cluster: helm install/upgrade/uninstall, plain manifests, dry-run.

The cluster may be shared with other test sessions, so nothing here deletes the CRD or changes it
in a way others could notice: an existing CRD is adopted by the Helm release under test (ownership
label and annotations only), the upgrade test adds a printer column and restores the original chart,
and uninstalls keep the CRD. KWOK fakes pods, so "operator Ready" means the pod was scheduled and
reported Ready with its probes; the image is not pulled.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from helpers import Cluster, wait_for

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "modelfleet"
MANIFESTS = ROOT / "manifests"
CRD = "llmdeployments.modelfleet.io"
MANIFEST_NS = "modelfleet-system"
LLM = """
apiVersion: modelfleet.io/v1alpha1
kind: LLMDeployment
metadata:
  name: tiny
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
  gpu:
    count: 1
"""


def crd_established(cluster: Cluster) -> dict | None:
    res = cluster.kubectl("get", "crd", CRD, "-o", "json", check=False)
    if res.returncode != 0:
        return None
    crd = json.loads(res.stdout)
    conds = {c["type"]: c["status"] for c in crd.get("status", {}).get("conditions", [])}
    return crd if conds.get("Established") == "True" and conds.get("NamesAccepted") == "True" else None


def deployment_ready(cluster: Cluster, namespace: str, name: str) -> dict | None:
    res = cluster.kubectl("get", "deployment", name, "-n", namespace, "-o", "json", check=False)
    if res.returncode != 0:
        return None
    dep = json.loads(res.stdout)
    st = dep.get("status", {})
    # Every operator pod Ready (the chart runs two: a leader and a standby, both answer /healthz).
    want = dep["spec"]["replicas"]
    ok = st.get("readyReplicas") == want >= 1 and st.get("observedGeneration") == dep["metadata"]["generation"]
    return dep if ok else None


def wait_operator_ready(cluster: Cluster, namespace: str, name: str) -> dict:
    return wait_for(lambda: deployment_ready(cluster, namespace, name), timeout=120, interval=1,
                    message=f"operator Deployment {namespace}/{name} Ready\n{cluster.dump(namespace)}")


def adopt_crd(cluster: Cluster, release: str, namespace: str) -> None:
    """Let `release` take over a CRD that another install (or test session) created."""
    if cluster.kubectl("get", "crd", CRD, check=False).returncode != 0:
        return
    cluster.kubectl("label", "crd", CRD, "app.kubernetes.io/managed-by=Helm", "--overwrite")
    cluster.kubectl("annotate", "crd", CRD, f"meta.helm.sh/release-name={release}",
                    f"meta.helm.sh/release-namespace={namespace}", "--overwrite")


def can_i(cluster: Cluster, sa: str, verb: str, resource: str, namespace: str | None) -> bool:
    """`kubectl auth can-i` as the operator's ServiceAccount; resource may be "res.group/subresource"."""
    resource, _, sub = resource.partition("/")
    args = ["auth", "can-i", verb, resource, f"--as={sa}"]
    args += [f"--subresource={sub}"] if sub else []
    args += ["-n", namespace] if namespace else []
    res = cluster.kubectl(*args, check=False)
    return res.stdout.strip() == "yes"


@pytest.fixture
def release(cluster: Cluster, namespace: str) -> Iterator[str]:
    """A Helm release name in the test namespace; uninstalled afterwards (the CRD is kept)."""
    name = f"modelfleet-{namespace[-6:]}"
    adopt_crd(cluster, name, namespace)
    yield name
    cluster.helm("uninstall", name, "-n", namespace, "--wait", "--timeout", "60s", check=False)


def test_helm_install_serves_the_crd_and_runs_the_operator(cluster: Cluster, namespace: str, release: str) -> None:
    res = cluster.helm("install", release, str(CHART), "-n", namespace)
    notes = res.stdout.split("NOTES:", 1)[-1]
    for step in (f"rollout status deployment/{release}", "kind: LLMDeployment", "kubectl get llm"):
        assert step in notes, f"NOTES.txt lacks the next step {step!r}:\n{res.stdout}"
    crd = wait_for(lambda: crd_established(cluster), timeout=60, interval=0.5, message=f"CRD {CRD} Established")
    assert crd["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep", crd["metadata"]
    dep = wait_operator_ready(cluster, namespace, release)
    pod_spec = dep["spec"]["template"]["spec"]
    assert pod_spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=LLM)
    listed = cluster.kubectl("get", "llm", "-n", namespace, "-o", "name").stdout
    assert "llmdeployment.modelfleet.io/tiny" in listed, listed


SA_CHECKS = [
    ("list", "llmdeployments.modelfleet.io", True),
    ("patch", "llmdeployments.modelfleet.io/status", True),
    ("patch", "deployments.apps/scale", True),
    ("create", "deployments.apps", True),
    ("patch", "pods", True),
    ("create", "events", True),
    ("get", "secrets", False),
    ("delete", "deployments.apps", False),
    ("update", "llmdeployments.modelfleet.io", False),
]


def test_namespaced_mode_grants_only_the_watched_namespace(cluster: Cluster, namespace: str, release: str) -> None:
    cluster.helm("install", release, str(CHART), "-n", namespace, "--set", f"watchNamespaces={{{namespace}}}",
                 "--set", "crds.enabled=false")
    sa = f"system:serviceaccount:{namespace}:{release}"
    wrong = [(verb, res, want) for verb, res, want in SA_CHECKS if can_i(cluster, sa, verb, res, namespace) != want]
    assert not wrong, f"RBAC in the watched namespace differs from the intent (verb, resource, expected): {wrong}"
    assert not can_i(cluster, sa, "list", "llmdeployments.modelfleet.io", "default"), \
        "namespaced mode must not grant access outside watchNamespaces"
    assert can_i(cluster, sa, "watch", "customresourcedefinitions.apiextensions.k8s.io", None)
    assert not can_i(cluster, sa, "create", "customresourcedefinitions.apiextensions.k8s.io", None)


def _chart_with_extra_column(tmp_path: Path) -> Path:
    copy = tmp_path / "modelfleet"
    shutil.copytree(CHART, copy)
    template = next((copy / "templates" / "crds").glob("*.yaml"))
    text = template.read_text()
    column = ("    additionalPrinterColumns:\n"
              "    - name: E2EUpgrade\n      type: string\n      jsonPath: .spec.quantization\n")
    assert "    additionalPrinterColumns:\n" in text, "the CRD template has no printer columns to extend"
    template.write_text(text.replace("    additionalPrinterColumns:\n", column, 1))
    chart_yaml = copy / "Chart.yaml"
    chart_yaml.write_text(re.sub(r"^version: .*$", "version: 0.1.1-e2e", chart_yaml.read_text(), flags=re.M))
    return copy


def printer_columns(cluster: Cluster) -> list[str]:
    crd = json.loads(cluster.kubectl("get", "crd", CRD, "-o", "json").stdout)
    return [c["name"] for c in crd["spec"]["versions"][0].get("additionalPrinterColumns", [])]


def test_helm_upgrade_updates_the_crd(cluster: Cluster, namespace: str, release: str, tmp_path: Path) -> None:
    cluster.helm("install", release, str(CHART), "-n", namespace)
    wait_for(lambda: crd_established(cluster), timeout=60, interval=0.5, message="CRD Established")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=LLM)
    try:
        cluster.helm("upgrade", release, str(_chart_with_extra_column(tmp_path)), "-n", namespace)
        wait_for(lambda: "E2EUpgrade" in printer_columns(cluster), timeout=30, interval=0.5,
                 message=f"the upgraded CRD's new printer column (have {printer_columns(cluster)})")
        header = wait_for(lambda: "E2EUPGRADE" in (h := cluster.kubectl("get", "llm", "-n", namespace).stdout) and h,
                          timeout=30, interval=0.5, message="`kubectl get llm` showing the new column")
        assert "tiny" in header, header
    finally:
        cluster.helm("upgrade", release, str(CHART), "-n", namespace, check=False)
    wait_for(lambda: "E2EUpgrade" not in printer_columns(cluster), timeout=30, interval=0.5,
             message="the original CRD restored by upgrading back")


def test_helm_uninstall_keeps_crd_and_llmdeployments(cluster: Cluster, namespace: str, release: str) -> None:
    cluster.helm("install", release, str(CHART), "-n", namespace, "--set", "crds.keep=true")
    wait_for(lambda: crd_established(cluster), timeout=60, interval=0.5, message="CRD Established")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=LLM)
    cluster.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "60s")
    assert crd_established(cluster), "helm uninstall removed the CRD despite crds.keep=true"
    res = cluster.kubectl("get", "llm", "tiny", "-n", namespace, "-o", "name", check=False)
    assert res.returncode == 0, f"the LLMDeployment is gone after uninstall: {res.stderr}"
    gone = cluster.kubectl("get", "deployment", release, "-n", namespace, check=False)
    assert gone.returncode != 0, "the operator Deployment survived helm uninstall"


@pytest.fixture
def manifests_installed(cluster: Cluster) -> Iterator[None]:
    exists = cluster.kubectl("get", "namespace", MANIFEST_NS, check=False)
    if exists.returncode == 0:
        pytest.fail(f"namespace {MANIFEST_NS} already exists: another install is in the way; delete it first",
                    pytrace=False)
    yield
    cluster.kubectl("delete", "-f", str(MANIFESTS / "04-deployment.yaml"), "-f", str(MANIFESTS / "03-rbac.yaml"),
                    "--ignore-not-found", "--wait=false", check=False)
    cluster.kubectl("delete", "namespace", MANIFEST_NS, "--wait=false", "--ignore-not-found", check=False)


def test_kubectl_apply_manifests_installs_a_working_operator(cluster: Cluster, namespace: str,
                                                             manifests_installed: None) -> None:
    # The CRD may already be owned by Helm from the tests above; a real fresh cluster has no conflict.
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(MANIFESTS))
    wait_for(lambda: crd_established(cluster), timeout=60, interval=0.5, message="CRD Established")
    wait_operator_ready(cluster, MANIFEST_NS, "modelfleet")
    sa = f"system:serviceaccount:{MANIFEST_NS}:modelfleet"
    wrong = [(verb, res, want) for verb, res, want in SA_CHECKS if can_i(cluster, sa, verb, res, namespace) != want]
    assert not wrong, f"manifests/ RBAC differs from the intent (verb, resource, expected): {wrong}"
    generation = deployment_ready(cluster, MANIFEST_NS, "modelfleet")["metadata"]["generation"]
    # Re-applying (an upgrade with nothing new) needs no --force-conflicts and changes nothing.
    cluster.kubectl("apply", "--server-side", "-f", str(MANIFESTS))
    after = json.loads(cluster.kubectl("get", "deployment", "modelfleet", "-n", MANIFEST_NS, "-o", "json").stdout)
    assert after["metadata"]["generation"] == generation, "re-applying manifests/ changed the operator Deployment"


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["--set", "watchNamespaces={NS}", "--set", "networkPolicy.enabled=true"],
        ["--set", "metrics.mode=prometheus", "--set", "prometheus.url=http://prometheus:9090",
         "--set", "crds.keep=false"],
    ],
    ids=["defaults", "namespaced-with-networkpolicy", "prometheus"],
)
def test_rendered_chart_passes_server_side_dry_run(cluster: Cluster, namespace: str, values: list[str]) -> None:
    rendered = cluster.helm("template", "modelfleet", str(CHART), "-n", namespace,
                            *[v.replace("NS", namespace) for v in values]).stdout
    kinds = sorted({d["kind"] for d in yaml.safe_load_all(rendered) if d})
    res = cluster.kubectl("apply", "--server-side", "--force-conflicts", "--dry-run=server", "-f", "-",
                          input=rendered, check=False)
    assert res.returncode == 0, f"the API server rejects the chart ({values}); kinds {kinds}:\n{res.stderr}"
    assert res.stdout.count("(server dry run)") == len([d for d in yaml.safe_load_all(rendered) if d]), res.stdout
