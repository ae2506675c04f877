"""startup.py: the startup probe's budget from the checkpoint size, by hand-computed cases."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import api, render, startup


def spec(uri: str = "hf://org/model", **engine: Any) -> api.LLMDeploymentSpec:
    return api.LLMDeploymentSpec.model_validate({"model": {"uri": uri}, "engine": engine})


@pytest.mark.parametrize(
    ("case", "checkpoint", "cached", "expected"),
    [
        # 0.5B BF16, 988e6 B, downloaded in the pod: 300 + 988e6/(200 MiB/s) 4.7 s + 988e6/(50 MiB/s) 18.8 s
        # = 323.6 s -> the 1800 s floor.
        (spec(), 988_000_000, False, 1800),
        # 70B BF16, 141.2e9 B: 300 + 673.3 s load + 2693.2 s download = 3666.5 s -> 3670 s.
        (spec(), 141_200_000_000, False, 3670),
        # the same from the shared cache: no download, 300 + 673.3 = 973.3 s -> the floor.
        (spec(), 141_200_000_000, True, 1800),
        # 405B BF16, 810e9 B, from the cache: 300 + 3862.4 s load = 4162.4 s -> 4170 s.
        (spec(), 810_000_000_000, True, 4170),
        # a PVC is read in place: 141.2e9 B loads in 673.3 s, no download: the floor.
        (spec("pvc://models/llama"), 141_200_000_000, False, 1800),
        # the model's size unknown: the floor.
        (spec(), None, False, 1800),
        # the user's number wins, shorter or longer.
        (spec(startupTimeoutSeconds=900), 141_200_000_000, False, 900),
        (spec(startupTimeoutSeconds=7200), None, False, 7200),
    ],
)
def test_budget(case: api.LLMDeploymentSpec, checkpoint: int | None, cached: bool, expected: int) -> None:
    assert startup.budget_seconds(case, checkpoint, cached) == expected


def test_rendered_probe_and_progress_deadline_follow_the_budget() -> None:
    llm = api.LLMDeployment.model_validate({"metadata": {"name": "big"}, "spec": {"model": {"uri": "hf://org/model"}}})
    dep = render.deployment(llm, render.RenderChoices(replicas=1, weights_bytes=141_200_000_000))
    probe = dep["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] == 3670
    assert dep["spec"]["progressDeadlineSeconds"] == 3670 + 600
