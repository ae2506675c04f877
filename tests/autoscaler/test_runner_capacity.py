"""The operator hands the policy what only it knows: KV capacity (status) and observed pod startup."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelfleet.api import AutoscalingSpec
from modelfleet.autoscaler.loop import AutoscalerMetrics, Target, run_cycle
from modelfleet.autoscaler.metrics import DeploymentKey, Signals
from modelfleet.autoscaler.runner import target_for
from modelfleet.registry import View

NOW = 1_800_000_000.0


def stamp(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, created_ago: float, ready_after: float | None) -> dict[str, Any]:
    """A pod created ``created_ago`` s before NOW that became Ready ``ready_after`` s after creation."""
    created = NOW - created_ago
    cond = ({"type": "Ready", "status": "True", "lastTransitionTime": stamp(created + ready_after)}
            if ready_after is not None else {"type": "Ready", "status": "False"})
    return {"metadata": {"name": name, "creationTimestamp": stamp(created),
                         "ownerReferences": [{"uid": "rs-uid", "controller": True}]},
            "status": {"conditions": [cond], "podIP": "10.0.0.1"}}


def view(pods: list[dict[str, Any]], capacity: dict[str, Any] | None) -> View:
    llm = {"metadata": {"name": "m", "namespace": "n", "uid": "llm-uid"},
           "spec": {"model": {"uri": "hf://a/b"}, "autoscaling": {"enabled": True}},
           "status": {"capacity": capacity} if capacity else {}}
    # The ownership chain the autoscaler requires: LLMDeployment -> Deployment -> ReplicaSet -> pods.
    deployment = {"metadata": {"uid": "dep-uid", "ownerReferences": [{"uid": "llm-uid", "controller": True}]},
                  "spec": {"replicas": len(pods)}, "status": {"readyReplicas": 2}}
    replicaset = {"metadata": {"uid": "rs-uid", "ownerReferences": [{"uid": "dep-uid", "controller": True}]}}
    return View(llm, deployment, pods, [replicaset])


def test_kv_capacity_from_status_and_median_startup_of_ready_pods() -> None:
    pods = [pod("a", 1000, 100), pod("b", 900, 130), pod("c", 800, 90), pod("d", 50, None)]
    t = target_for(view(pods, {"kvCacheTokens": 26624}), NOW)
    assert t is not None
    assert t.kv_cache_tokens == 26624
    assert t.startup_seconds == 100.0  # median of 100, 130, 90; the starting pod d has no Ready time


def test_without_capacity_or_ready_pods_both_are_unknown() -> None:
    t = target_for(view([pod("d", 50, None)], None), NOW)
    assert t is not None and t.kv_cache_tokens is None and t.startup_seconds is None


def test_run_cycle_hands_the_capacity_to_the_policy() -> None:
    class Source:
        def fetch(self, pod_urls: Mapping[DeploymentKey, Mapping[str, str]]) -> dict[DeploymentKey, Signals]:
            return {("ns", "a"): Signals(40, 60, 0.9, 3, 1.0)}

    class Store:
        async def scale(self, namespace: str, name: str, replicas: int) -> None: ...

        async def write_status(self, namespace: str, name: str, autoscaler: dict[str, Any], desired_replicas: int,
                               conditions: list[dict[str, Any]]) -> None: ...

        async def event(self, namespace: str, name: str, type: str, reason: str, message: str) -> None: ...

    spec = AutoscalingSpec(enabled=True, min_replicas=1, max_replicas=32)
    targets = [Target("ns", "a", spec, 256, 3, 3, kv_cache_tokens=28_000, startup_seconds=None)]
    out = asyncio.run(run_cycle(targets, Source(), Store(), NOW, metrics=AutoscalerMetrics(CollectorRegistry())))
    # 0.9 x 28,000 x 3 / 60 = 1,260 KV tokens a request -> a replica runs 28,000 / 1,260 = 22.2 at once
    # (maxNumSeqs 256 does not limit); need = 60 + (40 - 4 x 3) / 2 = 74 -> (74 + 2 sqrt 74) / 22.2 = 4.1
    assert out[0].decision.details["batch"] == pytest.approx(28_000 / 1_260)
    assert out[0].decision.desired_replicas == 5
