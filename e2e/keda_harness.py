"""KEDA against an LLMDeployment: start KEDA on the cluster, write the ScaledObject, record replicas.

- :func:`ensure_keda`: `e2e/cluster up --with-prometheus --with-keda` (starts KEDA on a cluster that is
  already up; the control plane is untouched) and returns the cluster's state.
- :func:`scaled_object`: the ScaledObject a user writes for an LLMDeployment: KEDA's Prometheus
  scaler on ``sum(vllm:num_requests_waiting{...})`` with a ``threshold``, targeting the
  LLMDeployment's scale subresource (``apiVersion: modelfleet.io/v1alpha1, kind: LLMDeployment``).
- :class:`ReplicaRecorder`: a thread that reads the LLMDeployment's ``spec.replicas`` (what the HPA
  KEDA created writes) and its Deployment's ``spec.replicas`` (what modelfleet writes) every
  ``interval`` seconds and keeps every change with its time.
- :func:`hpa_events`: the Events of KEDA's HPA (``SuccessfulRescale`` with the new size and reason).
- :class:`HpaWatch`: polls that HPA's status every second and keeps each distinct (external metric
  average, current replicas, desired replicas): what the HPA saw and decided at each sync.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from helpers import CLUSTER_CLI, Cluster

GROUP, VERSION, PLURAL = "modelfleet.io", "v1alpha1", "llmdeployments"


def ensure_keda() -> dict[str, Any]:
    """KEDA running on the (already started) cluster; returns state.json. Raises AssertionError with
    the command's output when KEDA cannot start."""
    from localcluster import cluster as localcluster

    res = subprocess.run([sys.executable, str(CLUSTER_CLI), "up", "--with-prometheus", "--with-keda"],
                         capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise AssertionError(f"`e2e/cluster up --with-prometheus --with-keda` exited {res.returncode}:\n"
                             f"{res.stderr[-6000:]}")
    st = localcluster.is_up()
    assert st and st.get("keda"), f"KEDA not recorded in the cluster state:\n{res.stderr[-3000:]}"
    return st


def hpa_name(scaled_object_name: str) -> str:
    """The HPA KEDA creates for a ScaledObject (keda-hpa-<name>, KEDA's default)."""
    return f"keda-hpa-{scaled_object_name}"


def waiting_query(namespace: str, name: str) -> str:
    """vLLM's queue summed over one LLMDeployment's pods (the simulators carry these labels)."""
    return f'sum(vllm:num_requests_waiting{{namespace="{namespace}",modelfleet_io_deployment="{name}"}})'


def scaled_object(name: str, namespace: str, prometheus_url: str, *, threshold: float, min_replicas: int,
                  max_replicas: int, scale_down_window: int | None = None,
                  polling_interval: int | None = None) -> dict[str, Any]:
    """A ScaledObject for LLMDeployment `name`: Prometheus trigger on its summed queue, AverageValue
    `threshold` per replica. scale_down_window sets the HPA's scaleDown stabilizationWindowSeconds
    (HPA default when None: 300 s)."""
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "name": name},
        "minReplicaCount": min_replicas,
        "maxReplicaCount": max_replicas,
        "triggers": [{
            "type": "prometheus",
            "metadata": {"serverAddress": prometheus_url, "query": waiting_query(namespace, name),
                         "threshold": f"{threshold:g}"},
        }],
    }
    if polling_interval is not None:
        spec["pollingInterval"] = polling_interval
    if scale_down_window is not None:
        spec["advanced"] = {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {
            "stabilizationWindowSeconds": scale_down_window,
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}}}}
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def scaled_object_ready(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    """The ScaledObject once KEDA reports it Ready=True (its HPA created), else None."""
    obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object("keda.sh", "v1alpha1", namespace,
                                                                      "scaledobjects", name)
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return obj
    return None


def hpa_events(cluster: Cluster, namespace: str, hpa: str) -> list[dict[str, Any]]:
    """The HPA's Events, oldest first: reason, message, count, first/last timestamps."""
    evs = cluster.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={hpa}").items
    out = [{"reason": e.reason, "message": e.message, "count": e.count or 1, "type": e.type,
            "first": e.first_timestamp or e.event_time, "last": e.last_timestamp or e.event_time} for e in evs]
    return sorted(out, key=lambda e: str(e["first"]))


@dataclass
class Change:
    """One observed change: seconds since the recorder started, wall clock, which field, the new value."""

    t: float
    wall: str
    what: str  # "llm" (LLMDeployment spec.replicas) or "deployment" (Deployment spec.replicas)
    value: int


@dataclass
class ReplicaRecorder:
    """Polls the LLMDeployment's and the Deployment's spec.replicas; keeps every change."""

    cluster: Cluster
    namespace: str
    name: str
    interval: float = 0.2
    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    reads: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"replicas-{self.name}", daemon=True)
        self.started = time.monotonic()
        self._last: dict[str, int] = {}

    def __enter__(self) -> ReplicaRecorder:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _read(self) -> dict[str, int]:
        llm = self.cluster.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, self.name,
                                                                _request_timeout=10)
        dep = self.cluster.apps.read_namespaced_deployment(self.name, self.namespace, _request_timeout=10)
        return {"llm": int(llm["spec"].get("replicas", 1)), "deployment": int(dep.spec.replicas)}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = self._read()
                self.reads += 1
                for what, value in now.items():
                    if self._last.get(what) != value:
                        self._last[what] = value
                        self.changes.append(Change(round(time.monotonic() - self.started, 2),
                                                   time.strftime("%H:%M:%S"), what, value))
            except Exception as e:  # the reads have their own timeout; a blip must not end the record
                self.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
            self._stop.wait(self.interval)

    def values(self, what: str) -> list[int]:
        """The successive values of one field, the first read included."""
        return [c.value for c in self.changes if c.what == what]

    def current(self, what: str) -> int | None:
        return self._last.get(what)

    def table(self) -> str:
        """Every change, one a line, for the report and for failure messages."""
        return "\n".join(f"  +{c.t:7.2f}s {c.wall} {c.what:<10} -> {c.value}" for c in self.changes)


class HpaWatch:
    """Polls KEDA's HPA status every second; keeps each distinct (metric, current, desired) it reports."""

    def __init__(self, cluster: Cluster, ns: str, name: str) -> None:
        from kubernetes import client

        self.api = client.AutoscalingV2Api(cluster.kube)
        self.ns, self.name = ns, name
        self.samples: list[tuple[float, float | None, int, int]] = []  # (t, averageValue, current, desired)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()

    def start(self) -> HpaWatch:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from kubernetes.utils import parse_quantity

        last = None
        while not self._stop.is_set():
            try:
                st = self.api.read_namespaced_horizontal_pod_autoscaler(self.name, self.ns, _request_timeout=10).status
                avg = None
                for m in st.current_metrics or []:
                    if m.external and m.external.current and m.external.current.average_value is not None:
                        avg = float(parse_quantity(m.external.current.average_value))
                key = (avg, st.current_replicas, st.desired_replicas, str(st.last_scale_time))
                if key != last:
                    last = key
                    self.samples.append((round(time.monotonic() - self.started, 1), avg,
                                         int(st.current_replicas or 0), int(st.desired_replicas or 0)))
            except Exception:  # 404 before KEDA created it; an API blip
                pass
            self._stop.wait(1.0)

    def table(self) -> str:
        """Each distinct HPA status, one a line."""
        return "\n".join(f"  +{t:6.1f}s metric avg {'-' if avg is None else format(avg, '.3f')} "
                         f"current {cur} desired {des}" for t, avg, cur, des in self.samples)
