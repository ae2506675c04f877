"""The chart's least-privilege RBAC is enough: the real operator, holding only its ServiceAccount's token,
brings an LLMDeployment to Ready without a single Forbidden answer.

The session's own operator watches only `t-*` namespaces (see operator_fixture), so here the operator under
test is the only one acting on the `rbac-*` namespace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import Cluster, wait_for
from operator_fixture import start_operator
from test_operator import apply_llm, ready

pytestmark = pytest.mark.cluster
CHART = Path(__file__).resolve().parents[1] / "charts" / "modelfleet"


def token_kubeconfig(cluster: Cluster, namespace: str, service_account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (a bound token), nothing more."""
    admin = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    token = cluster.kubectl("create", "token", service_account, "-n", namespace, "--duration=1h").stdout.strip()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": "operator"}}],
        "current-context": "operator",
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def rbac_namespace(cluster: Cluster) -> Iterator[str]:
    name = f"rbac-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_operator_works_with_only_the_charts_rbac(
    cluster: Cluster, crd: Path, rbac_namespace: str, tmp_path: Path, mode: str
) -> None:
    ns = rbac_namespace
    release = f"op-{uuid.uuid4().hex[:5]}"
    values = ["--set", "crds.enabled=false"]
    if mode == "namespaced":
        values += ["--set", f"watchNamespaces={{{ns}}}"]
    rendered = cluster.helm("template", release, str(CHART), "-n", ns, *values).stdout
    # Only identity and permissions: the operator itself runs here as a local process.
    wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    docs = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in wanted]
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(docs))
    (sa,) = [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"]
    kubeconfig = token_kubeconfig(cluster, ns, sa, tmp_path / "operator.kubeconfig")
    # It elects on the Lease the chart grants it (its name is the only one in the Lease Role's resourceNames).
    (lease_role,) = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader-election")]
    (lease_name,) = {n for rule in lease_role["rules"] for n in rule.get("resourceNames", [])}
    settings: dict[str, Any] = {"metrics_mode": "off", "resync_seconds": "5", "log_level": "info",
                                "lease_namespace": ns, "lease_name": lease_name}
    if mode == "namespaced":
        settings["namespaces"] = ns
    op = start_operator(str(kubeconfig), tmp_path / "operator.log", **settings)
    try:
        apply_llm(cluster, ns, "scoped", replicas=1)
        wait_for(
            lambda: ready(cluster, ns, "scoped", 1),
            timeout=60,
            message=f"Ready under the chart's {mode} RBAC; operator log:\n{op.log_tail()}",
        )
        events = json.loads(cluster.kubectl("get", "events", "-n", ns, "-o", "json").stdout)["items"]
        assert any(e["reason"] == "CreatedDeployment" for e in events), events
        log = op.log.read_text()
        assert "Forbidden" not in log and " 403" not in log, op.log_tail(80)
        holder = cluster.kubectl("get", "lease", lease_name, "-n", ns, "-o", "jsonpath={.spec.holderIdentity}")
        assert holder.stdout.strip(), f"the operator did not hold its Lease; log:\n{op.log_tail()}"
    finally:
        op.proc.terminate()
        op.proc.wait(timeout=20)
        cluster_scoped = [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
        cluster.kubectl(
            "delete", "-f", "-", "--ignore-not-found", input=yaml.safe_dump_all(cluster_scoped), check=False
        )
