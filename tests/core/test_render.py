"""Rendering: spec -> Deployment and Service, table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import api, render

BASE: dict[str, Any] = {
    "apiVersion": api.API_VERSION,
    "kind": api.KIND,
    "metadata": {"name": "llama", "namespace": "serving", "uid": "u-1"},
    "spec": {"model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}},
}


def llm(**spec: Any) -> api.LLMDeployment:
    body = {**BASE, "spec": {**BASE["spec"], **spec}}
    return api.LLMDeployment.model_validate(body)


def container(obj: api.LLMDeployment, replicas: int = 1, max_model_len: int | None = None) -> dict[str, Any]:
    dep = render.deployment(obj, render.RenderChoices(replicas=replicas, max_model_len=max_model_len))
    c: dict[str, Any] = dep["spec"]["template"]["spec"]["containers"][0]
    return c


def flag(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


@pytest.mark.parametrize(
    ("spec", "name", "expected"),
    [
        ({}, "--tensor-parallel-size", "1"),
        ({"gpu": {"count": 4}}, "--tensor-parallel-size", "4"),
        ({}, "--served-model-name", "llama"),
        ({"model": {"uri": "hf://a/b", "servedName": "chat"}}, "--served-model-name", "chat"),
        ({}, "--quantization", None),
        ({"quantization": "awq"}, "--quantization", "awq"),
        ({"quantization": "fp8"}, "--quantization", "fp8"),
        ({"engine": {"maxModelLen": 4096}}, "--max-model-len", "4096"),
        ({"engine": {"gpuMemoryUtilization": 0.85}}, "--gpu-memory-utilization", "0.85"),
        ({"engine": {"maxNumSeqs": 64}}, "--max-num-seqs", "64"),
        ({}, "--kv-cache-dtype", None),
        ({"engine": {"kvCacheDtype": "fp8"}}, "--kv-cache-dtype", "fp8"),
        ({}, "--port", "8000"),
        ({"model": {"uri": "s3://bucket/llama"}}, "--load-format", "runai_streamer"),
    ],
)
def test_vllm_flags(spec: dict[str, Any], name: str, expected: str | None) -> None:
    assert flag(container(llm(**spec))["args"], name) == expected


@pytest.mark.parametrize(
    ("uri", "model_arg"),
    [
        ("hf://meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("pvc://models/llama/8b", "/models/models/llama/8b"),
        ("file:///opt/models/llama", "/opt/models/llama"),
        ("s3://bucket/llama", "s3://bucket/llama"),
    ],
)
def test_model_argument(uri: str, model_arg: str) -> None:
    assert container(llm(model={"uri": uri}))["args"][0] == model_arg


def test_prefix_caching_both_ways() -> None:
    assert "--enable-prefix-caching" in container(llm())["args"]
    assert "--no-enable-prefix-caching" in container(llm(engine={"enablePrefixCaching": False}))["args"]


def test_planner_choice_used_only_when_spec_is_silent() -> None:
    # vLLM 0.11.0 cannot size the context itself: the planner's number is rendered.
    old = {"version": "0.11.0"}
    assert flag(container(llm(engine=old), max_model_len=16384)["args"], "--max-model-len") == "16384"
    chosen = container(llm(engine={**old, "maxModelLen": 4096}), max_model_len=16384)
    assert flag(chosen["args"], "--max-model-len") == "4096"


def test_current_vllm_sizes_the_context_itself_when_spec_is_silent() -> None:
    # vLLM 0.32.0 accepts `--max-model-len auto` (the largest that fits); the planner's number
    # then only goes to status.
    assert flag(container(llm(), max_model_len=16384)["args"], "--max-model-len") == "auto"
    chosen = container(llm(engine={"maxModelLen": 4096}), max_model_len=16384)
    assert flag(chosen["args"], "--max-model-len") == "4096"


@pytest.mark.parametrize(
    ("engine", "image"),
    [
        ({}, "vllm/vllm-openai:v0.32.0"),
        ({"version": "0.11.0"}, "vllm/vllm-openai:v0.11.0"),
        ({"image": "vllm/vllm-openai:v0.11.0"}, "vllm/vllm-openai:v0.11.0"),
        ({"image": "registry.local/vllm:patched", "version": "0.32.0"}, "registry.local/vllm:patched"),
    ],
)
def test_image_follows_the_release(engine: dict[str, Any], image: str) -> None:
    assert container(llm(engine=engine))["image"] == image


def test_passthrough_args_come_last() -> None:
    args = container(llm(engine={"args": ["--enable-chunked-prefill", "--seed=1"]}))["args"]
    assert args[-2:] == ["--enable-chunked-prefill", "--seed=1"]


@pytest.mark.parametrize("arg", ["--tensor-parallel-size=2", "--max-model-len", "-tp", "--api-key=x", "--port=1"])
def test_owned_flags_refused(arg: str) -> None:
    with pytest.raises(ValueError, match="set that field instead"):
        llm(engine={"args": [arg]})


def test_gpus_shm_probes_port() -> None:
    c = container(llm(gpu={"count": 2}, engine={"resources": {"requests": {"cpu": "8"}}}))
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert c["resources"]["requests"] == {"cpu": "8", "nvidia.com/gpu": "2"}
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/dev/shm"}
    startup = c["startupProbe"]
    # 1800 s default load budget at one probe per 10 s
    assert startup["httpGet"]["path"] == "/health" and startup["failureThreshold"] * startup["periodSeconds"] == 1800
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"


def test_shm_is_memory_backed() -> None:
    dep = render.deployment(llm(engine={"shmSize": "16Gi"}), render.RenderChoices(replicas=1))
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}


def test_secrets_only_through_env() -> None:
    obj = llm(
        model={"uri": "hf://a/b", "tokenSecretRef": {"name": "hf", "key": "t"}},
        apiKeySecretRef={"name": "keys", "key": "k"},
    )
    c = container(obj)
    env = {e["name"]: e for e in c["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "t"}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "keys", "key": "k"}
    assert not any("keys" in a or "api-key" in a for a in c["args"])


@pytest.mark.parametrize(
    ("spec", "selector"),
    [
        ({}, None),
        ({"gpu": {"product": "NVIDIA-L4"}}, {"nvidia.com/gpu.product": "NVIDIA-L4"}),
        (
            {"gpu": {"product": "NVIDIA-L4"}, "scheduling": {"nodeSelector": {"pool": "a"}}},
            {"pool": "a", "nvidia.com/gpu.product": "NVIDIA-L4"},
        ),
    ],
)
def test_node_selector(spec: dict[str, Any], selector: dict[str, str] | None) -> None:
    pod = render.deployment(llm(**spec), render.RenderChoices(replicas=1))["spec"]["template"]["spec"]
    assert pod.get("nodeSelector") == selector


def test_scheduling_passthrough() -> None:
    tol = {"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}
    pod = render.deployment(
        llm(scheduling={"tolerations": [tol], "priorityClassName": "high", "affinity": {"nodeAffinity": {}}}),
        render.RenderChoices(replicas=1),
    )["spec"]["template"]["spec"]
    assert tol in pod["tolerations"]
    assert pod["priorityClassName"] == "high"
    assert pod["affinity"] == {"nodeAffinity": {}}


def test_labels_selector_and_service() -> None:
    obj = llm()
    dep, svc = render.render(obj, render.RenderChoices(replicas=3))
    assert [dep["kind"], svc["kind"]] == ["Deployment", "Service"]  # the Deployment first: replicas start sooner
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"]["matchLabels"] == {api.DEPLOYMENT_LABEL: "llama"}
    assert dep["spec"]["template"]["metadata"]["labels"][api.DEPLOYMENT_LABEL] == "llama"
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"][0]["port"] == 8000
    assert svc["spec"]["selector"] == {api.DEPLOYMENT_LABEL: "llama"}
    assert render.endpoint(obj) == "http://llama.serving.svc:8000/v1"


def test_hash_ignores_replicas_but_not_config() -> None:
    a = render.deployment(llm(), render.RenderChoices(replicas=1))
    b = render.deployment(llm(), render.RenderChoices(replicas=5))
    c = render.deployment(llm(engine={"maxNumSeqs": 8}), render.RenderChoices(replicas=1))
    key = render.CONFIG_HASH_ANNOTATION
    assert a["metadata"]["annotations"][key] == b["metadata"]["annotations"][key]
    assert a["metadata"]["annotations"][key] != c["metadata"]["annotations"][key]


def test_owner_reference() -> None:
    body = {"metadata": {"name": "llama", "uid": "u-1"}}
    child = render.with_owner(render.service(llm()), body)
    (ref,) = child["metadata"]["ownerReferences"]
    assert ref["uid"] == "u-1" and ref["controller"] is True and ref["kind"] == api.KIND
