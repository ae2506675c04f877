"""The API models refuse what the CRD refuses, naming the field (shared cases with the e2e test)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelfleet import api
from modelfleet.loading import describe_validation

CASES = yaml.safe_load((Path(__file__).parents[1] / "cases" / "invalid_llmdeployments.yaml").read_text())


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge patch into a copy of base; a None value removes the key."""
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def invalid_body(case: dict[str, Any]) -> dict[str, Any]:
    """The whole object of one invalid case."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": case.get("name", case["id"])},
        "spec": merge(CASES["base"], case["spec"]),
    }


def test_there_are_enough_cases() -> None:
    assert len(CASES["cases"]) >= 25
    assert len({c["id"] for c in CASES["cases"]}) == len(CASES["cases"])


def test_base_is_valid() -> None:
    api.LLMDeployment.model_validate({"metadata": {"name": "ok"}, "spec": CASES["base"]})


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_refused_naming_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        api.LLMDeployment.model_validate(invalid_body(case))
    line = describe_validation(info.value)
    assert case["field"] in line, line


def test_defaults() -> None:
    spec = api.LLMDeploymentSpec.model_validate({"model": {"uri": "hf://a/b"}})
    assert (spec.gpu.count, spec.replicas, spec.quantization, spec.autoscaling.enabled) == (1, 1, "none", False)
    # The image is derived from the release (engines); the spec leaves both unset.
    assert (spec.engine.image, spec.engine.version) == (None, None)


def test_selector_string() -> None:
    assert api.selector_string("llama") == "modelfleet.io/deployment=llama"
