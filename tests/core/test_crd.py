"""The committed CRD equals the generator's output and is a structural schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelfleet import crd

ROOT = Path(__file__).parents[2]
COMMITTED = ROOT / "crds" / "llmdeployments.modelfleet.io.yaml"


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.get("properties", {}).items():
            found += walk(value, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                found += walk(node[key], f"{path}[{key}]")
    return found


def test_committed_crd_matches_generator() -> None:
    assert COMMITTED.read_text() == crd.crd_yaml(), (
        "crds/ is stale: run `make generate` (modelfleet crd > crds/llmdeployments.modelfleet.io.yaml)"
    )


def test_schema_is_structural() -> None:
    schema = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in walk(schema):
        assert "$ref" not in node and "anyOf" not in node and "title" not in node, path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not ("properties" in node and "additionalProperties" in node), path
        if "exclusiveMinimum" in node:
            assert node["exclusiveMinimum"] is True and "minimum" in node, path


def test_subresources_and_columns() -> None:
    version = crd.crd()["spec"]["versions"][0]
    scale = version["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    names = [c["name"] for c in version["additionalPrinterColumns"]]
    for wanted in ("Model", "GPUs", "Ready", "Status", "Age"):
        assert wanted in names


def test_defaults_reach_nested_objects() -> None:
    spec = crd.crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["gpu"]["default"] == {}
    assert spec["properties"]["gpu"]["properties"]["count"]["default"] == 1
    assert "default" not in spec["properties"]["model"]["properties"]["architecture"]


def test_names() -> None:
    doc = yaml.safe_load(COMMITTED.read_text())
    assert doc["metadata"]["name"] == "llmdeployments.modelfleet.io"
    assert doc["spec"]["names"]["shortNames"] == ["llm"]
