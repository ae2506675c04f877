"""The local cluster behaves like a real one: scheduling on fake GPU nodes, readiness, GC, version."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import CLUSTER_CLI, Cluster, wait_for

pytestmark = pytest.mark.cluster


def deployment(name: str, gpus: int, replicas: int = 1) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "vllm", "image": "vllm/vllm-openai:v0.6.0",
                    "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                }]},
            },
        },
    })


def pods(cluster: Cluster, namespace: str, selector: str) -> list[dict]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json").stdout
    return json.loads(out)["items"]


def is_ready(pod: dict) -> bool:
    conds = pod.get("status", {}).get("conditions") or []
    return pod["status"].get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in conds)


def test_gpu_deployment_runs_ready_on_a_fake_gpu_node(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("llm", gpus=2, replicas=2))

    def two_ready() -> list[dict] | None:
        ready = [p for p in pods(cluster, namespace, "app=llm") if is_ready(p)]
        return ready if len(ready) == 2 else None

    ready = wait_for(two_ready, timeout=60, message="2 Running+Ready pods of Deployment llm")
    for pod in ready:
        assert pod["spec"]["nodeName"] in cluster.nodes
        node = cluster.core.read_node(pod["spec"]["nodeName"])
        assert node.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert node.status.allocatable["nvidia.com/gpu"] == str(cluster.gpus_per_node)
    wait_for(lambda: (cluster.apps.read_namespaced_deployment("llm", namespace).status.ready_replicas or 0) == 2,
             timeout=30, message="Deployment llm to report readyReplicas=2")


def test_pod_wanting_more_gpus_than_any_node_stays_pending(cluster: Cluster, namespace: str) -> None:
    too_many = cluster.gpus_per_node + 1
    pod = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "greedy"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
                                 "resources": {"limits": {"nvidia.com/gpu": str(too_many)}}}]},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod))

    def failed_scheduling() -> list:
        events = cluster.core.list_namespaced_event(namespace, field_selector="involvedObject.name=greedy").items
        return [e for e in events if e.reason == "FailedScheduling" and "nvidia.com/gpu" in (e.message or "")]

    events = wait_for(failed_scheduling, timeout=30, message="a FailedScheduling event naming nvidia.com/gpu")
    assert "Insufficient nvidia.com/gpu" in events[0].message
    assert cluster.core.read_namespaced_pod("greedy", namespace).status.phase == "Pending"


def test_deleting_a_deployment_garbage_collects_replicasets_and_pods(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("gc", gpus=1))
    wait_for(lambda: any(is_ready(p) for p in pods(cluster, namespace, "app=gc")), timeout=60,
             message="a Ready pod of Deployment gc")
    rs = cluster.apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items
    assert rs and rs[0].metadata.owner_references[0].kind == "Deployment"
    cluster.kubectl("delete", "deployment", "gc", "-n", namespace, "--wait=false")
    wait_for(lambda: not cluster.apps.list_namespaced_replica_set(namespace, label_selector="app=gc").items,
             timeout=60, message="the ReplicaSet of gc to be garbage-collected")
    wait_for(lambda: not pods(cluster, namespace, "app=gc"), timeout=60,
             message="the pods of gc to be garbage-collected")


def test_server_version_is_the_pinned_release(cluster: Cluster) -> None:
    out = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == "v1.34.4"
    assert out["clientVersion"]["gitVersion"] == "v1.34.4"


def test_prometheus_is_ready_and_reads_the_targets_dir(cluster: Cluster) -> None:
    import urllib.request

    assert cluster.prometheus_url and cluster.targets_dir.is_dir()
    with urllib.request.urlopen(cluster.prometheus_url + "/api/v1/status/config", timeout=5) as resp:
        cfg = json.load(resp)["data"]["yaml"]
    assert str(cluster.targets_dir) in cfg


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CLUSTER_CLI), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [["frobnicate"], ["up", "--no-such-flag"], ["up", "--nodes", "zero"], [],
                                  ["stop", "apiserver"], ["restart"], ["start", "etcd", "--kill"],
                                  ["stop", "etcd", "kwok"]])
def test_cli_bad_input_prints_usage_and_exits_2(args: list[str]) -> None:
    res = run_cli(*args)
    assert res.returncode == 2, res
    assert "usage:" in res.stderr


def test_up_twice_prints_the_same_kubeconfig_line(cluster: Cluster) -> None:
    res = run_cli("up")
    assert res.returncode == 0, res.stderr
    assert "already up" in res.stderr
    assert res.stdout.strip().splitlines()[-1] == f"KUBECONFIG={cluster.kubeconfig}"
    env = run_cli("env")
    assert env.stdout.strip() == f"KUBECONFIG={cluster.kubeconfig}"


def test_up_restarts_a_dead_prometheus_alone_on_its_port(cluster: Cluster) -> None:
    """A crashed Prometheus comes back on the same URL; the control plane is left running."""
    import os
    import signal
    import urllib.request

    from localcluster import procs, state

    before = state.load(cluster.state_dir / "state.json")
    assert before is not None
    pid = before["pids"]["prometheus"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not procs.alive(pid), timeout=10, message="Prometheus to die")
    res = run_cli("up", "--with-prometheus")
    assert res.returncode == 0, res.stderr
    assert "already up" in res.stderr and "cleaning up" not in res.stderr, res.stderr
    after = state.load(cluster.state_dir / "state.json")
    assert after is not None
    assert after["prometheus_url"] == before["prometheus_url"] and after["server"] == before["server"]
    assert after["pids"]["kube-apiserver"] == before["pids"]["kube-apiserver"]

    def ready() -> bool:
        with urllib.request.urlopen(after["prometheus_url"] + "/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)

    wait_for(ready, timeout=30, message="the restarted Prometheus to be ready")
