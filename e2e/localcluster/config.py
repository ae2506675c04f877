"""Pinned versions and every path e2e/cluster uses. Versions are pinned here and only here."""

from __future__ import annotations

import os
from pathlib import Path

KUBERNETES_VERSION = "v1.34.4"  # also pinned in e2e/tools/go.mod (k8s.io/kubernetes + staging v0.34.4)
ETCD_VERSION = "v3.6.4"  # pinned in e2e/tools/go.mod (go.etcd.io/etcd/server/v3)
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.21.4"
HELM_K8S_MINOR = "36"  # helm v3.21.4 builds against k8s.io/client-go v0.36.x
PROMETHEUS_DEB = "prometheus"  # Debian package, provides /usr/bin/prometheus
KEDA_VERSION = "v2.21.0"  # also pinned in e2e/tools/keda/go.mod (github.com/kedacore/keda/v2)
KEDA_MODULE = "github.com/kedacore/keda/v2"
KEDA_BINARIES = ("keda-operator", "keda-adapter")  # built from cmd/operator and cmd/adapter

K8S_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd")

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
POD_CIDR = "10.244.0.1/16"  # kwok hands out fake pod IPs from here

# Fake GPU nodes.
NODE_PREFIX = "gpu-node-"
DEFAULT_NODES = 4
DEFAULT_GPUS_PER_NODE = 8
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT = "NVIDIA-H100-80GB-HBM3"
GPU_MEMORY_MIB = "81559"
NODE_CPU = "64"
NODE_MEMORY = "512Gi"
NODE_PODS = "110"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_ANNOTATION_VALUE = "fake"

PROMETHEUS_JOB = "modelfleet"
PROMETHEUS_SCRAPE_INTERVAL = "2s"
PROMETHEUS_SD_REFRESH = "1s"


def cache_root() -> Path:
    return Path(os.environ.get("MODELFLEET_CACHE") or Path.home() / ".cache" / "modelfleet").expanduser()


def state_dir() -> Path:
    env = os.environ.get("MODELFLEET_CLUSTER_DIR")
    return Path(env).expanduser() if env else cache_root() / "cluster"


def gomodcache() -> Path:
    return cache_root() / "go" / "mod"


def gocache() -> Path:
    return cache_root() / "go" / "build"


def k8s_bin_dir() -> Path:
    return cache_root() / "bin" / f"k8s-{KUBERNETES_VERSION}"


def kwok_bin_dir() -> Path:
    return cache_root() / "bin" / f"kwok-{KWOK_VERSION}"


def helm_bin_dir() -> Path:
    return cache_root() / "bin" / f"helm-{HELM_VERSION}"


def keda_bin_dir() -> Path:
    return cache_root() / "bin" / f"keda-{KEDA_VERSION}"


def binary(name: str) -> Path:
    """Path of a cached tool: one of K8S_BINARIES, KEDA_BINARIES, 'kwok', 'helm' or 'prometheus'."""
    if name in K8S_BINARIES:
        return k8s_bin_dir() / name
    if name in KEDA_BINARIES:
        return keda_bin_dir() / name
    if name == "kwok":
        return kwok_bin_dir() / "kwok"
    if name == "helm":
        return helm_bin_dir() / "helm"
    if name == "prometheus":
        return Path(os.environ.get("MODELFLEET_PROMETHEUS") or "/usr/bin/prometheus")
    raise KeyError(name)


def tools_module_dir() -> Path:
    """e2e/tools: the wrapper Go module that pins Kubernetes and etcd."""
    return Path(__file__).resolve().parent.parent / "tools"


def keda_module_dir() -> Path:
    """e2e/tools/keda: the wrapper Go module that pins KEDA (its own module: KEDA's dependencies
    would otherwise move Kubernetes' in e2e/tools)."""
    return tools_module_dir() / "keda"


def keda_source_dir() -> Path:
    """KEDA's module source in the Go module cache (config/crd/bases holds its CRDs)."""
    return gomodcache() / f"{KEDA_MODULE}@{KEDA_VERSION}"
