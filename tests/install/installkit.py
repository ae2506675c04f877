"""Shared by the install tests: the pinned helm, rendering the chart, reading the result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelfleet"
CRD_FILE = ROOT / "crds" / "llmdeployments.modelfleet.io.yaml"
sys.path.insert(0, str(ROOT / "scripts"))

import generate  # noqa: E402

HELM = generate.helm_binary()
KUBE_VERSION = generate.KUBE_VERSION
# Never a silent skip: without helm these tests fail and say how to build it (CI builds it first).
needs_helm = pytest.mark.usefixtures("helm_binary")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    res = subprocess.run([HELM, *args], capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {res.returncode}:\n{res.stderr}", pytrace=False)
    return res


def render(*values: str, namespace: str = "modelfleet-system", check: bool = True) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart; `values` are extra flags such as --set a=b."""
    return helm("template", "modelfleet", str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION,
                *values, check=check)


def objects(*values: str, namespace: str = "modelfleet-system") -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(render(*values, namespace=namespace).stdout) if d]


def by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, found {[o['metadata'].get('name') for o in found]}"
    return found[0]


CHART_CRD_ANNOTATIONS = {"helm.sh/resource-policy", "argocd.argoproj.io/sync-wave", "argocd.argoproj.io/sync-options"}


def without_chart_annotations(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD as crds/ has it: the chart only adds these annotations."""
    meta = dict(crd["metadata"])
    annotations = {k: v for k, v in (meta.pop("annotations", None) or {}).items() if k not in CHART_CRD_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    return {**crd, "metadata": meta}
