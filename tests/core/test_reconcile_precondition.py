"""Status writes carry a resourceVersion precondition only where another writer (the autoscaler) exists."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import api
from modelfleet.reconcile import status_precondition


def body(autoscaling: bool, rv: str = "41") -> dict[str, Any]:
    spec: dict[str, Any] = {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}, "gpu": {"count": 1}}
    if autoscaling:
        spec["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 3}
    return {"apiVersion": api.API_VERSION, "kind": api.KIND,
            "metadata": {"name": "m", "namespace": "n", "resourceVersion": rv}, "spec": spec}


@pytest.mark.parametrize(
    ("autoscaling", "rv", "expected"),
    [
        (True, "41", "41"),  # the autoscaler also merges conditions: a concurrent write must 409
        (False, "41", None),  # we are the only status writer: kopf's annotation writes must not 409 us
        (True, "", None),  # no version known: nothing to hold the write to
    ],
)
def test_precondition_only_with_a_second_status_writer(autoscaling: bool, rv: str, expected: str | None) -> None:
    doc = body(autoscaling, rv)
    assert status_precondition(api.LLMDeployment.model_validate(doc), doc) == expected
