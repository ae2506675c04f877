"""Model pods are locked down by default; `podSecurity: restricted` meets the PodSecurity restricted level."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import api, render

# Llama 3.1 8B has 8,030,261,248 parameters (model card: 8.03B); BF16 is 2 bytes each.
LLAMA_8B_BF16_BYTES = 8_030_261_248 * 2


def pod(spec: dict[str, Any], weights_bytes: int | None = None) -> dict[str, Any]:
    body = {"metadata": {"name": "m", "namespace": "team-a"}, "spec": spec}
    llm = api.LLMDeployment.model_validate(body)
    dep = render.deployment(llm, render.RenderChoices(replicas=1, weights_bytes=weights_bytes))
    out: dict[str, Any] = dep["spec"]["template"]["spec"]
    return out


def env_of(p: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in p["containers"][0]["env"]}


HF = {"model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}}


def test_default_pod_is_hardened_but_keeps_the_image_user() -> None:
    p = pod(HF)
    ctx = p["containers"][0]["securityContext"]
    assert ctx == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    assert p["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert p["automountServiceAccountToken"] is False


def test_restricted_pod_runs_as_a_fixed_non_root_uid() -> None:
    p = pod({**HF, "podSecurity": "restricted"})
    for ctx in (p["securityContext"], p["containers"][0]["securityContext"]):
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 1000 and ctx["runAsGroup"] == 1000
    assert p["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_every_runtime_cache_dir_is_on_the_cache_volume() -> None:
    env = env_of(pod({**HF, "podSecurity": "restricted"}))
    for name in ("HOME", "HF_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "VLLM_CACHE_ROOT", "VLLM_CONFIG_ROOT",
                 "TRITON_CACHE_DIR", "TORCHINDUCTOR_CACHE_DIR"):
        assert str(env[name]).startswith("/cache/"), (name, env[name])
    # torch inductor calls getpass.getuser(), which fails for a UID without a passwd entry unless USER is set.
    assert env["USER"]


@pytest.mark.parametrize(
    ("spec", "weights", "limit"),
    [
        # 16,060,522,496 B = 14.957 GiB; x 1.1 = 16.45; + 10 GiB headroom = 26.45 -> 27Gi
        (HF, LLAMA_8B_BF16_BYTES, "27Gi"),
        # fp8 quantizes a BF16 checkpoint on load: 9 GiB of weights come from 2 x 9 GiB of download:
        # 2 x 9 GiB = 18 GiB; x 1.1 = 19.8; + 10 = 29.8 -> 30Gi
        ({**HF, "quantization": "fp8"}, 9 * 1024**3, "30Gi"),
        # unknown model: a bound that still holds a 70B BF16 checkpoint (131.4 GiB x 1.1 + 10 = 154.5)
        ({"model": {"uri": "hf://someone/unknown"}}, None, "160Gi"),
        # read in place or streamed: only compile caches and tokenizer files
        ({"model": {"uri": "pvc://models/llama"}}, LLAMA_8B_BF16_BYTES, "10Gi"),
        ({"model": {"uri": "s3://bucket/llama"}}, LLAMA_8B_BF16_BYTES, "10Gi"),
    ],
)
def test_cache_volume_has_a_size_limit(spec: dict[str, Any], weights: int | None, limit: str) -> None:
    volumes = {v["name"]: v for v in pod(spec, weights)["volumes"]}
    assert volumes["cache"]["emptyDir"] == {"sizeLimit": limit}


def test_s3_credentials_come_key_by_key_from_the_secret() -> None:
    p = pod({"model": {"uri": "s3://bucket/llama", "credentialsSecretRef": {"name": "s3-creds"}}})
    env = env_of(p)
    assert env["AWS_ACCESS_KEY_ID"] == {"secretKeyRef": {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"}}
    optional = {"name": "s3-creds", "key": "AWS_SESSION_TOKEN", "optional": True}
    assert env["AWS_SESSION_TOKEN"] == {"secretKeyRef": optional}
    # never the whole Secret: it could carry VLLM_API_KEY or HF_ENDPOINT
    assert "envFrom" not in p["containers"][0]


def test_gs_credentials_are_a_read_only_file() -> None:
    p = pod({"model": {"uri": "gs://bucket/llama", "credentialsSecretRef": {"name": "gcs"}}})
    volumes = {v["name"]: v for v in p["volumes"]}
    assert volumes["storage-credentials"]["secret"]["secretName"] == "gcs"
    mounts = {m["name"]: m for m in p["containers"][0]["volumeMounts"]}
    assert mounts["storage-credentials"]["readOnly"] is True
    path = env_of(p)["GOOGLE_APPLICATION_CREDENTIALS"]
    assert path == mounts["storage-credentials"]["mountPath"] + "/key.json"


def test_pods_refused_by_admission_show_up_as_degraded() -> None:
    from modelfleet import status

    # The Deployment controller's own words when PodSecurity refuses the pods (Kubernetes 1.34).
    refused = (
        'pods "m-7d9f" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true '
        '(pod or container "vllm" must set securityContext.runAsNonRoot=true)'
    )
    dep = {
        "metadata": {"generation": 1},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1, "conditions": [
            {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": refused}]},
    }
    out = status.compute(1, "http://m", "sel", 1, status.FitVerdict(True, "Fits", ""), status.Observed(dep, []))
    degraded = next(c for c in out["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"], out["phase"]) == ("True", "FailedCreate", "Degraded")
    assert "runAsNonRoot" in degraded["message"] and "spec.podSecurity: restricted" in degraded["message"]
