"""drift.differences: hand edits of owned fields are found; server defaults and others' additions are not."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelfleet import api, render
from modelfleet.drift import differences

LLM = api.LLMDeployment.model_validate(
    {
        "metadata": {"name": "m", "namespace": "n", "uid": "u1"},
        "spec": {"model": {"uri": "hf://a/b"}, "gpu": {"count": 1}, "replicas": 2},
    }
)
WANT = render.with_owner(
    render.deployment(LLM, render.RenderChoices(replicas=2, max_model_len=None)),
    {"metadata": {"name": "m", "namespace": "n", "uid": "u1"}},
)


def live(**edits: Any) -> dict[str, Any]:
    """The rendered Deployment as the API server returns it: with defaults, status and quantities as text."""
    obj = copy.deepcopy(WANT)
    obj["metadata"].update(uid="d1", resourceVersion="7", generation=1)
    obj["status"] = {"replicas": 2}
    obj["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"  # server default
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["terminationMessagePath"] = "/dev/termination-log"  # server default
    limits = container["resources"]["limits"]
    limits["nvidia.com/gpu"] = str(limits["nvidia.com/gpu"])  # the API returns quantities as strings
    for path, value in edits.items():
        *parents, leaf = path.split("/")
        node: Any = obj
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return obj


C = "spec/template/spec/containers/0"


@pytest.mark.parametrize(
    ("edits", "expected"),
    [
        ({}, []),
        ({f"{C}/image": "evil:latest"}, ["spec.template.spec.containers[vllm].image"]),
        ({"spec/replicas": 5}, ["spec.replicas"]),
        ({"metadata/labels": {"app.kubernetes.io/name": "x"}}, [f"metadata.labels.{api.DEPLOYMENT_LABEL}"]),
        ({f"{C}/args": ["--model", "other"]}, ["spec.template.spec.containers[vllm].args"]),
        (
            {f"{C}/resources": {"limits": {"nvidia.com/gpu": "4"}}},
            ["spec.template.spec.containers[vllm].resources.limits.nvidia.com/gpu"],
        ),
    ],
    ids=["server-defaults-only", "image", "replicas", "label-removed", "args", "gpu-limit"],
)
def test_differences(edits: dict[str, Any], expected: list[str]) -> None:
    got = differences(WANT, live(**edits))
    for path in expected:
        assert any(g.startswith(path) for g in got), (path, got)
    if not expected:
        assert got == []


def test_env_edit_found_by_name_and_foreign_env_ignored() -> None:
    obj = live()
    env = obj["spec"]["template"]["spec"]["containers"][0].setdefault("env", [])
    env.insert(0, {"name": "ADDED_BY_SOMEONE", "value": "1"})  # not ours, and shifts positions
    assert differences(WANT, obj) == []
    wanted_env = WANT["spec"]["template"]["spec"]["containers"][0].get("env") or []
    if wanted_env:
        ours = next(e for e in env if e["name"] == wanted_env[0]["name"])
        ours["value"] = "hand-edited"
        ours.pop("valueFrom", None)
        assert differences(WANT, obj), "an edited env value must count as drift"


@pytest.mark.parametrize(
    ("want", "have", "drift"),
    [
        ({"resources": {"limits": {"cpu": "1"}}}, {"resources": {"limits": {"cpu": "1000m"}}}, False),
        ({"resources": {"limits": {"memory": "16Gi"}}}, {"resources": {"limits": {"memory": "17179869184"}}}, False),
        ({"resources": {"limits": {"memory": "16Gi"}}}, {"resources": {"limits": {"memory": "8Gi"}}}, True),
        ({"port": 8000}, {"port": "8000"}, False),  # int-or-string comes back as text
        ({"a": False}, {"a": "False"}, True),  # booleans are never equal to text
        ({"volumes": []}, {}, False),  # an empty list is not stored
        ({"args": ["--a", "--b"]}, {"args": ["--b", "--a"]}, True),  # order matters in args
        ({"spec": {"selector": {"a": "1"}}}, {"spec": {"selector": {"a": "1", "app": "x"}}}, True),  # atomic map
        ({"metadata": {"labels": {"a": "1"}}}, {"metadata": {"labels": {"a": "1", "team": "x"}}}, False),
    ],
)
def test_scalar_rules(want: dict[str, Any], have: dict[str, Any], drift: bool) -> None:
    assert bool(differences(want, have)) is drift
