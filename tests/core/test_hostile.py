"""Hostile and careless input is refused by the models, naming the field (issue 10).

The same case file drives e2e/test_security.py against the real API server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelfleet import api, render
from modelfleet.loading import describe_validation

CASES = yaml.safe_load((Path(__file__).parents[1] / "cases" / "hostile_llmdeployments.yaml").read_text())


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge patch into a copy of base."""
    out = dict(base)
    for key, value in patch.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def body(case: dict[str, Any]) -> dict[str, Any]:
    """The whole LLMDeployment of one case."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": case["id"], "namespace": "team-a"},
        "spec": merge(CASES["base"], case["spec"]),
    }


def test_cases_cover_every_attack_family() -> None:
    ids = [c["id"] for c in CASES["refused"]]
    assert len(ids) == len(set(ids)) and len(ids) >= 50
    for family in ("uri-", "env-", "args-", "credentials-", "served-name-"):
        assert any(i.startswith(family) for i in ids), family


@pytest.mark.parametrize("case", CASES["refused"], ids=[c["id"] for c in CASES["refused"]])
def test_refused_naming_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        api.LLMDeployment.model_validate(body(case))
    line = describe_validation(info.value)
    assert line.startswith(case["field"]), line


@pytest.mark.parametrize("case", CASES["accepted"], ids=[c["id"] for c in CASES["accepted"]])
def test_ordinary_input_is_accepted(case: dict[str, Any]) -> None:
    llm = api.LLMDeployment.model_validate(body(case))
    assert render.render(llm, render.RenderChoices(replicas=1))


def test_owned_env_message_names_the_variable_and_the_field() -> None:
    case = {"id": "x", "spec": {"engine": {"env": {"VLLM_API_KEY": ""}}}}
    with pytest.raises(ValidationError) as info:
        api.LLMDeployment.model_validate(body(case))
    line = describe_validation(info.value)
    assert "VLLM_API_KEY" in line and "apiKeySecretRef" in line, line


def test_arg_refusal_does_not_echo_the_value() -> None:
    case = {"id": "x", "spec": {"engine": {"args": ["--api_key=hunter2-secret"]}}}
    with pytest.raises(ValidationError) as info:
        api.LLMDeployment.model_validate(body(case))
    line = describe_validation(info.value)
    assert "--api-key" in line and "apiKeySecretRef" in line and "hunter2" not in line, line
