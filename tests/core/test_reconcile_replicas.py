"""Who sets a Deployment's replicas: the spec without autoscaling, the autoscaler (never the reconciler) with it."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import api
from modelfleet.reconcile import applied_replicas, desired_replicas


def llm(autoscaled: bool, replicas: int = 2, desired: int | None = None) -> api.LLMDeployment:
    body: dict[str, Any] = {
        "metadata": {"name": "m", "namespace": "n"},
        "spec": {"model": {"uri": "hf://a/b"}, "replicas": replicas,
                 "autoscaling": {"enabled": autoscaled, "minReplicas": 1, "maxReplicas": 4}},
    }
    if desired is not None:
        body["status"] = {"desiredReplicas": desired}
    return api.LLMDeployment.model_validate(body)


def dep(replicas: int) -> dict[str, Any]:
    return {"spec": {"replicas": replicas}}


@pytest.mark.parametrize(
    ("obj", "existing", "expected"),
    [
        (llm(False, replicas=2), dep(5), 2),  # no autoscaling: spec.replicas wins, a hand scale is reverted
        (llm(True, desired=2), None, 2),  # first apply: the stored decision
        (llm(True, desired=2), dep(3), 3),  # the autoscaler scaled to 3 after our body was read: keep 3
        (llm(True, desired=2), dep(9), 4),  # outside [1, 4] (maxReplicas lowered): clamped
        (llm(True, desired=2), dep(0), 1),
    ],
    ids=["manual", "autoscaled-new", "autoscaled-stale-body", "above-max", "below-min"],
)
def test_applied_replicas(obj: api.LLMDeployment, existing: dict[str, Any] | None, expected: int) -> None:
    assert applied_replicas(obj, existing, desired_replicas(obj, existing)) == expected
