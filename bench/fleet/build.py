"""Building the bench cluster: many KWOK GPU nodes, unrelated pods, the LLMDeployments; all in bulk.

`e2e/cluster up` starts the control plane with a few nodes; the rest are created here in parallel
through the API (kubectl's one-by-one apply of 1,000 nodes would dominate the run).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "e2e"))

from localcluster import nodes as fake_nodes  # noqa: E402

GPUS_PER_NODE = 8
FOREIGN_NAMESPACES = 10
FOREIGN_LABEL = {"bench.modelfleet.io/foreign": "true"}  # and NOT modelfleet.io/deployment
WORKERS = 16


def api_client(kubeconfig: str) -> client.ApiClient:
    """A client with a large connection pool for the bulk creates."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = WORKERS * 2
    return client.ApiClient(configuration)


def in_parallel(what: str, fn: Callable[[Any], Any], items: Iterable[Any]) -> float:
    """Run `fn` over `items` on WORKERS threads; returns the seconds it took. 409 (exists) counts as done."""

    def one(item: Any) -> None:
        try:
            fn(item)
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(one, items))
    took = time.monotonic() - started
    print(f"  {what}: {took:.1f} s", file=sys.stderr)
    return took


def create_nodes(api: client.ApiClient, first: int, count: int) -> None:
    """Fake GPU nodes `first`..`count-1` (the cluster made the ones before), managed by kwok."""
    core = client.CoreV1Api(api)
    in_parallel(
        f"{count - first} more KWOK nodes",
        lambda i: core.create_node(fake_nodes.manifest(i, GPUS_PER_NODE)),
        range(first, count),
    )


def list_items(call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every item of a paginated LIST (500 a page), as plain JSON."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        resp = call(*args, limit=500, _continue=token or None, _preload_content=False, **kwargs)
        doc = json.loads(resp.data)
        items += doc["items"]
        token = doc["metadata"].get("continue") or ""
        if not token:
            return items


def ready_nodes(api: client.ApiClient) -> int:
    """How many nodes report Ready."""
    nodes = list_items(client.CoreV1Api(api).list_node)
    conditions = [node.get("status", {}).get("conditions") or [] for node in nodes]
    return sum(any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds) for conds in conditions)


def foreign_pod(i: int, nodes: int) -> tuple[str, dict[str, Any]]:
    """An unrelated pod bound to fake node i % nodes (the scheduler would take minutes for 10,000)."""
    namespace = f"foreign-{i % FOREIGN_NAMESPACES}"
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"web-{i:05d}", "namespace": namespace, "labels": {"app": "web", **FOREIGN_LABEL}},
        "spec": {
            "nodeName": fake_nodes.node_name(i % nodes),
            # No service-account token: minting 10,000 signed tokens would dominate the setup.
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "nodeSelector": {"type": "kwok"},
            "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{"name": "web", "image": "nginx:fake"}],
        },
    }
    return namespace, body


def create_foreign_pods(api: client.ApiClient, count: int, nodes: int) -> None:
    """`count` unrelated pods spread over FOREIGN_NAMESPACES namespaces; kwok runs them."""
    core = client.CoreV1Api(api)
    for n in range(min(count, FOREIGN_NAMESPACES)):
        try:
            core.create_namespace({"metadata": {"name": f"foreign-{n}"}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise
    in_parallel(
        f"{count} foreign pods",
        lambda i: core.create_namespaced_pod(*foreign_pod(i, nodes)),
        range(count),
    )


def foreign_not_running(api: client.ApiClient) -> int:
    """Foreign pods kwok has not made Running yet (at most one page is fetched: 0 means all run)."""
    core = client.CoreV1Api(api)
    selector = ",".join(f"{k}={v}" for k, v in FOREIGN_LABEL.items())
    resp = core.list_pod_for_all_namespaces(
        label_selector=selector, field_selector="status.phase!=Running", limit=500, _preload_content=False
    )
    return len(json.loads(resp.data)["items"])


def llm(i: int, namespace: str) -> dict[str, Any]:
    """LLMDeployment number i: one replica on one H100."""
    return {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": f"m{i:04d}", "namespace": namespace},
        "spec": {
            "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
            "gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"},
            "engine": {"maxModelLen": 8192},
            "replicas": 1,
        },
    }


def create_llms(api: client.ApiClient, count: int, namespace: str) -> float:
    """Create the LLMDeployments in parallel; returns the seconds it took."""
    custom = client.CustomObjectsApi(api)
    return in_parallel(
        f"{count} LLMDeployments created",
        lambda i: custom.create_namespaced_custom_object("modelfleet.io", "v1alpha1", namespace, "llmdeployments",
                                                         llm(i, namespace)),
        range(count),
    )


def create_services(api: client.ApiClient, count: int, namespace: str) -> float:
    """`count` bare ClusterIP Services (the operator's shape) created WORKERS at a time; returns the seconds.

    The cluster's own floor for a rollout's Services: kube-apiserver allocates cluster IPs one at a time."""
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    return in_parallel(
        f"{count} bare ClusterIP Services",
        lambda i: core.create_namespaced_service(namespace, {
            "metadata": {"name": f"s{i:04d}"},
            "spec": {"type": "ClusterIP", "selector": {"app": f"s{i:04d}"},
                     "ports": [{"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}]},
        }),
        range(count),
    )
