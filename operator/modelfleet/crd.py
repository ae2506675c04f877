"""Generate the LLMDeployment CRD from the pydantic models in `api.py`.

Pydantic emits JSON Schema (2020-12); Kubernetes wants a *structural* OpenAPI v3.0
schema: no `$ref`, no `anyOf` with null, boolean `exclusiveMinimum`, and `default: {}`
on optional objects so that the API server fills in nested defaults.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel

from modelfleet import api

# Keys pydantic emits that a structural schema either forbids or does not need.
_DROPPED = {"title", "$defs", "examples"}
NAME_RULE = api.cel(
    f"self.metadata.name.size() <= {api.MAX_NAME_LENGTH} && self.metadata.name.matches('^{api.NAME_PATTERN.pattern}$')",
    api.NAME_MESSAGE,
)
PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Model", "type": "string", "jsonPath": ".spec.model.uri"},
    {"name": "Quant", "type": "string", "jsonPath": ".spec.quantization", "priority": 1},
    {"name": "GPUs", "type": "integer", "jsonPath": ".spec.gpu.count", "description": "GPUs per replica"},
    {"name": "Desired", "type": "integer", "jsonPath": ".status.desiredReplicas"},
    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
    {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Cache", "type": "string", "jsonPath": ".status.cache.phase", "description": "Shared model cache phase"},
    {
        "name": "KV-Seqs",
        "type": "integer",
        "jsonPath": ".status.capacity.maxConcurrentSequences",
        "description": "Concurrent sequences at maxModelLen per replica",
        "priority": 1,
    },
    {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline `$ref`s and turn JSON Schema idioms into structural OpenAPI v3.0."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = dict(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **extra}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) != 1:
            raise ValueError(f"cannot express union in a structural schema: {node}")
        if rest.get("default") is None:
            rest.pop("default", None)
        return _resolve({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key == "properties":
            out[key] = {name: _resolve(prop, defs) for name, prop in value.items()}
            continue
        out[key] = _resolve(value, defs)
    # Structural schemas forbid additionalProperties beside properties; unknown fields are
    # pruned by the API server (and refused by kubectl's strict field validation).
    if out.get("x-kubernetes-preserve-unknown-fields") or "properties" in out:
        out.pop("additionalProperties", None)
    elif out.get("type") == "object" and out.get("additionalProperties") is True:
        out.pop("additionalProperties")
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _default_nested_objects(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """Give optional sub-objects built by a default factory `default: {}` (recursively)."""
    props = schema.get("properties", {})
    for name, field in model.model_fields.items():
        key = field.alias or name
        prop = props.get(key)
        annotation = field.annotation
        if prop is None or not isinstance(annotation, type) or not issubclass(annotation, BaseModel):
            continue
        if field.default_factory is not None:
            prop["default"] = {}
        _default_nested_objects(prop, annotation)


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3.0 schema of one pydantic model."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}))
    _default_nested_objects(schema, model)
    return schema


def crd() -> dict[str, Any]:
    """The whole CustomResourceDefinition object."""
    spec_schema = model_schema(api.LLMDeploymentSpec)
    status_schema = model_schema(api.LLMDeploymentStatus)
    status_schema["properties"]["conditions"].update(
        {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
    )
    root = {
        "type": "object",
        "description": "A self-hosted LLM served by vLLM, sized for its GPUs and scaled by queue depth.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "x-kubernetes-validations": [NAME_RULE],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "modelfleet", "app.kubernetes.io/part-of": "modelfleet"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": ["modelfleet", "all"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def crd_yaml() -> str:
    """The CRD as the YAML committed in `crds/`."""
    header = "# Generated by `modelfleet crd` from operator/modelfleet/api.py. Do not edit.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)
