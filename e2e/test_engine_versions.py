"""vLLM releases in the cluster: the API server's rule for custom images, per-release rendering,
and a spec the release cannot serve held like one that does not fit (running replicas untouched)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from helpers import Cluster, wait_for
from operator_fixture import OperatorProcess
from test_operator import SMALL, apply_and_wait_ready, condition, events, get_llm, manifest

pytestmark = pytest.mark.cluster


def container(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    dep = cluster.kubectl("get", "deployment", name, "-n", ns, "-o", "json")
    c: dict[str, Any] = json.loads(dep.stdout)["spec"]["template"]["spec"]["containers"][0]
    return c


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def test_custom_image_needs_a_version(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    custom = "registry.example.com/ml/vllm:patched-3"
    res = cluster.kubectl(
        "apply", "-n", namespace, "-f", "-", input=manifest("custom", engine={"image": custom}), check=False
    )
    assert res.returncode != 0, "the API server accepted a custom image without engine.version"
    assert "engine.version is required with a custom engine.image" in res.stderr, res.stderr

    apply_and_wait_ready(cluster, operator, namespace, "custom", 1, engine={"image": custom, "version": "0.11.0"})
    c = container(cluster, namespace, "custom")
    assert c["image"] == custom
    assert "--disable-log-requests" not in c["args"]


def test_release_picks_image_and_flags(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    apply_and_wait_ready(cluster, operator, namespace, "current", 1, engine={})
    current = container(cluster, namespace, "current")
    assert current["image"] == "vllm/vllm-openai:v0.32.0"
    assert flag(current["args"], "--max-model-len") == "auto"  # vLLM 0.32 sizes the context itself

    # A context longer than the GPU holds (10M positions): on 0.11.0, which has no `auto`, the
    # planner's choice is rendered, and status says it was the planner's.
    long_context = {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "architecture": dict(SMALL, maxPositionEmbeddings=10**7)}
    apply_and_wait_ready(cluster, operator, namespace, "pinned", 1, engine={"version": "0.11.0"}, model=long_context)
    pinned = container(cluster, namespace, "pinned")
    assert pinned["image"] == "vllm/vllm-openai:v0.11.0"
    capacity = get_llm(cluster, namespace, "pinned")["status"]["capacity"]
    assert capacity["maxModelLenSource"] == "planner" and 0 < capacity["maxModelLen"] < 10**7
    assert flag(pinned["args"], "--max-model-len") == str(capacity["maxModelLen"])


def test_quantization_the_release_lacks_is_held(cluster: Cluster, operator: OperatorProcess, namespace: str) -> None:
    apply_and_wait_ready(cluster, operator, namespace, "keep", 1)
    before = cluster.apps.read_namespaced_deployment("keep", namespace).metadata.annotations
    cluster.kubectl("patch", "llm", "keep", "-n", namespace, "--type=merge", "-p", '{"spec": {"quantization": "gguf"}}')

    def held() -> dict[str, Any] | None:
        obj = get_llm(cluster, namespace, "keep")
        fits = condition(obj, "Fits")
        return obj if fits.get("reason") == "UnsupportedByEngine" and obj["status"]["observedGeneration"] == 2 else None

    obj = wait_for(held, timeout=30, message=f"Fits=False/UnsupportedByEngine; log:\n{operator.log_tail()}")
    message = condition(obj, "Fits")["message"]
    assert message.startswith("spec.quantization: gguf (vLLM 0.32.0): "), message
    assert condition(obj, "Fits")["status"] == "False"
    assert condition(obj, "Progressing")["reason"] == "RolloutHeld"
    assert condition(obj, "Ready")["status"] == "True"
    after = cluster.apps.read_namespaced_deployment("keep", namespace)
    assert after.metadata.annotations == before, "the Deployment changed although vLLM 0.32.0 cannot load gguf"
    assert after.status.ready_replicas == 1
    warnings = [e for e in events(cluster, namespace, "keep") if e["type"] == "Warning"]
    assert any("spec.quantization: gguf (vLLM 0.32.0)" in e["message"] for e in warnings), warnings
