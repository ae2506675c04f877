"""Fake GPU nodes, managed by the kwok controller (it makes them Ready and runs their pods)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from . import config


def node_name(i: int) -> str:
    return f"{config.NODE_PREFIX}{i}"


def manifest(i: int, gpus: int, *, taint: bool = False) -> dict[str, Any]:
    name = node_name(i)
    resources = {
        "cpu": config.NODE_CPU,
        "memory": config.NODE_MEMORY,
        "pods": config.NODE_PODS,
        config.GPU_RESOURCE: str(gpus),
    }
    spec: dict[str, Any] = {}
    if taint:  # off by default: modelfleet renders pods without a kwok toleration
        spec["taints"] = [{"key": config.KWOK_ANNOTATION, "value": config.KWOK_ANNOTATION_VALUE,
                           "effect": "NoSchedule"}]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {config.KWOK_ANNOTATION: config.KWOK_ANNOTATION_VALUE, "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
                "node-role.kubernetes.io/gpu": "",
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": config.GPU_PRODUCT,
                "nvidia.com/gpu.memory": config.GPU_MEMORY_MIB,
                "nvidia.com/gpu.count": str(gpus),
            },
        },
        "spec": spec,
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {
                "machineID": name, "systemUUID": name, "bootID": name, "kernelVersion": "kwok",
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": f"{config.KUBERNETES_VERSION}-kwok",
                "kubeProxyVersion": "",
                "osImage": "kwok fake node",
                "containerRuntimeVersion": "kwok",
            },
        },
    }


def create(kubeconfig: Path, count: int, gpus: int, *, taint: bool = False) -> list[str]:
    """kubectl apply the nodes; returns their names."""
    items = [manifest(i, gpus, taint=taint) for i in range(count)]
    doc = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    res = subprocess.run(
        [str(config.binary("kubectl")), f"--kubeconfig={kubeconfig}", "apply", "-f", "-"],
        input=doc, capture_output=True, text=True, timeout=60,
    )
    if res.returncode != 0:
        raise RuntimeError(f"kubectl apply of the fake nodes failed:\n{res.stderr.strip()}")
    return [node_name(i) for i in range(count)]


def ready_names(kubeconfig: Path) -> set[str]:
    res = subprocess.run(
        [str(config.binary("kubectl")), f"--kubeconfig={kubeconfig}", "get", "nodes", "-o", "json"],
        capture_output=True, text=True, timeout=30,
    )
    if res.returncode != 0:
        return set()
    ready = set()
    for node in json.loads(res.stdout)["items"]:
        for cond in node.get("status", {}).get("conditions") or []:
            if cond.get("type") == "Ready" and cond.get("status") == "True":
                ready.add(node["metadata"]["name"])
    return ready
