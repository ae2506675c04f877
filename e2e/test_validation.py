"""Bad LLMDeployments are refused by the API server itself (schema + CEL), naming the field."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import Cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "core"))
from test_api import CASES, invalid_body

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("case", CASES["cases"], ids=[c["id"] for c in CASES["cases"]])
def test_api_server_refuses(cluster: Cluster, crd: Path, namespace: str, case: dict[str, Any]) -> None:
    res = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(invalid_body(case)), check=False)
    assert res.returncode != 0, f"the API server accepted {case['id']}: {res.stdout}"
    assert case["field"] in res.stderr, res.stderr
    assert cluster.kubectl("get", "llm", "-n", namespace, "-o", "name").stdout.strip() == ""


def test_served_name_is_immutable(cluster: Cluster, crd: Path, namespace: str) -> None:
    body = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "named"},
        "spec": {"model": {"uri": "hf://a/b", "servedName": "chat"}},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))
    body["spec"]["model"]["servedName"] = "other"
    res = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=False)
    assert res.returncode != 0 and "servedName is immutable" in res.stderr, res.stderr


def test_defaults_are_filled_in(cluster: Cluster, crd: Path, namespace: str) -> None:
    body = {
        "apiVersion": "modelfleet.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "plain"},
        "spec": {"model": {"uri": "hf://a/b"}},
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body))
    got = cluster.custom.get_namespaced_custom_object(
        "modelfleet.io", "v1alpha1", namespace, "llmdeployments", "plain"
    )["spec"]
    assert got["gpu"]["count"] == 1 and got["replicas"] == 1 and got["quantization"] == "none"
    assert got["autoscaling"]["scaleDownStabilizationSeconds"] == 300
