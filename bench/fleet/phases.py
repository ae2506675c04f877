"""Where a rollout's time went, from the timestamps the cluster itself wrote (1 s resolution).

For each LLMDeployment: its create, the operator's Deployment create, the ReplicaSet controller's pod
create, the scheduler's bind (PodScheduled), kwok's Ready, the Deployment's Available and the
LLMDeployment's own Ready condition. Each stage is reported as seconds after the first LLMDeployment
was created (median and max over the fleet), so the stage whose max jumps is the one that held the
last objects back.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

from bench.fleet.build import list_items
from kubernetes import client

from modelfleet.api import DEPLOYMENT_LABEL

STAGES = ("llm_created", "deployment_created", "pod_created", "pod_scheduled", "pod_ready",
          "deployment_available", "llm_ready")


def _ts(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _condition(obj: dict[str, Any], kind: str) -> float | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return _ts(cond.get("lastTransitionTime"))
    return None


def _created(obj: dict[str, Any]) -> float | None:
    return _ts(obj["metadata"].get("creationTimestamp"))


def stage_times(api: client.ApiClient, namespace: str) -> dict[str, dict[str, float]]:
    """{LLMDeployment name: {stage: unix time}} for the stages that happened."""
    core, apps, custom = client.CoreV1Api(api), client.AppsV1Api(api), client.CustomObjectsApi(api)
    llms = list_items(custom.list_namespaced_custom_object, "modelfleet.io", "v1alpha1", namespace, "llmdeployments")
    deps = {d["metadata"]["name"]: d for d in list_items(apps.list_namespaced_deployment, namespace)}
    pods: dict[str, dict[str, Any]] = {}
    for pod in list_items(core.list_namespaced_pod, namespace, label_selector=DEPLOYMENT_LABEL):
        owner = pod["metadata"]["labels"][DEPLOYMENT_LABEL]
        if owner not in pods or (_created(pod) or 0) < (_created(pods[owner]) or 0):
            pods[owner] = pod  # the first pod of each (one replica; a replaced pod would come later)
    out: dict[str, dict[str, float]] = {}
    for llm in llms:
        name = llm["metadata"]["name"]
        dep, pod = deps.get(name), pods.get(name)
        found = {
            "llm_created": _created(llm),
            "deployment_created": _created(dep) if dep else None,
            "pod_created": _created(pod) if pod else None,
            "pod_scheduled": _condition(pod, "PodScheduled") if pod else None,
            "pod_ready": _condition(pod, "Ready") if pod else None,
            "deployment_available": _condition(dep, "Available") if dep else None,
            "llm_ready": _condition(llm, "Ready"),
        }
        out[name] = {k: v for k, v in found.items() if v is not None}
    return out


def summary(times: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per stage: median and max seconds after the first LLMDeployment create, and how many got there."""
    starts = [t["llm_created"] for t in times.values() if "llm_created" in t]
    if not starts:
        return {}
    zero = min(starts)
    out = {}
    for stage in STAGES:
        values = [t[stage] - zero for t in times.values() if stage in t]
        if values:
            out[stage] = {"median": round(statistics.median(values), 1), "max": round(max(values), 1),
                          "count": len(values)}
    return out
