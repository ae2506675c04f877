"""scripts/crd_compat.py: a CRD upgrade that would drop or invalidate stored fields is caught."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import crd_compat  # noqa: E402

CRD_FILE = ROOT / "crds" / "llmdeployments.modelfleet.io.yaml"
CRD: dict[str, Any] = yaml.safe_load(CRD_FILE.read_text())


def spec_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def status_schema(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


def _drop_uri(c: dict[str, Any]) -> None:
    del spec_schema(c)["properties"]["model"]["properties"]["uri"]


def _drop_condition_message(c: dict[str, Any]) -> None:
    del status_schema(c)["properties"]["conditions"]["items"]["properties"]["message"]


def _retype_replicas(c: dict[str, Any]) -> None:
    spec_schema(c)["properties"]["replicas"]["type"] = "string"


def _narrow_quantization(c: dict[str, Any]) -> None:
    enum = spec_schema(c)["properties"]["quantization"]["enum"]
    enum.remove("gguf")


def _require_engine(c: dict[str, Any]) -> None:
    spec_schema(c).setdefault("required", []).append("engine")


def _remove_version(c: dict[str, Any]) -> None:
    c["spec"]["versions"][0]["name"] = "v1beta1"


def _add_optional_field(c: dict[str, Any]) -> None:
    spec_schema(c)["properties"]["notes"] = {"type": "string"}


def _add_enum_value(c: dict[str, Any]) -> None:
    spec_schema(c)["properties"]["quantization"]["enum"].append("int4")


def _add_printer_column(c: dict[str, Any]) -> None:
    c["spec"]["versions"][0].setdefault("additionalPrinterColumns", []).append(
        {"name": "Note", "type": "string", "jsonPath": ".spec.notes"})


BREAKING: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("drop spec field", _drop_uri, ".spec.model.uri", "property removed"),
    ("drop status field in array items", _drop_condition_message, ".status.conditions[].message", "property removed"),
    ("change a type", _retype_replicas, ".spec.replicas", "type changed from integer to string"),
    ("narrow an enum", _narrow_quantization, ".spec.quantization", "enum values removed: ['gguf']"),
    ("require a field", _require_engine, ".spec", "newly required: ['engine']"),
    ("remove the stored version", _remove_version, "", "version removed"),
]
COMPATIBLE: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("unchanged", lambda c: None),
    ("add an optional field", _add_optional_field),
    ("widen an enum", _add_enum_value),
    ("add a printer column", _add_printer_column),
]


@pytest.mark.parametrize(("change", "mutate", "path", "problem"), BREAKING, ids=[b[0] for b in BREAKING])
def test_breaking_change_is_flagged(change: str, mutate: Callable[[dict[str, Any]], None], path: str,
                                    problem: str) -> None:
    new = copy.deepcopy(CRD)
    mutate(new)
    findings = crd_compat.compare_crds(CRD, new)
    assert any(f.path == path and problem in f.problem for f in findings), \
        f"{change}: expected a finding at {path!r} containing {problem!r}, got {[str(f) for f in findings]}"


@pytest.mark.parametrize(("change", "mutate"), COMPATIBLE, ids=[c[0] for c in COMPATIBLE])
def test_compatible_change_passes(change: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    new = copy.deepcopy(CRD)
    mutate(new)
    findings = crd_compat.compare_crds(CRD, new)
    assert findings == [], f"{change} is compatible, but the checker reports {[str(f) for f in findings]}"


def test_cli_exits_nonzero_and_names_the_dropped_field(tmp_path: Path) -> None:
    new = copy.deepcopy(CRD)
    _drop_uri(new)
    new_file = tmp_path / "new.yaml"
    new_file.write_text(yaml.safe_dump(new))
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "crd_compat.py"), str(CRD_FILE), str(new_file)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "v1alpha1 .spec.model.uri: property removed" in res.stdout, res.stdout
