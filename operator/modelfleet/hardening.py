"""Pure: how a model pod is locked down — security contexts, the cache volume's size, credentials.

Every pod drops all capabilities, forbids privilege escalation, uses the runtime's default
seccomp profile and gets no service-account token; `spec.podSecurity: restricted` also runs it
as a fixed non-root UID, which the PodSecurity `restricted` level requires.
"""

from __future__ import annotations

import math
from typing import Any

from modelfleet import api
from modelfleet.engines.vllm import env as vllm_env

CACHE_MOUNT = "/cache"
CREDENTIALS_MOUNT = "/var/run/secrets/modelfleet/storage"
# The UID/GID of restricted pods. The vllm-openai image has no such user, hence HOME/USER in
# the environment (see engines/vllm/env.cache_env).
RESTRICTED_UID = 1000
GIB = 1024**3
# The cache holds the downloaded checkpoint (hf://) plus tokenizer files and compile caches
# (torch.compile, Triton, CUDA graphs): 10 % on top of the weights and a fixed 10 GiB.
CACHE_HEADROOM_GIB = 10
CACHE_OVERHEAD = 1.1
# When the planner does not know the model: enough for a 70B BF16 checkpoint (131.4 GiB) with
# the headroom above, still a bound on what a download can take from the node's disk.
DEFAULT_CACHE_GIB = 160
# Online quantization reads a BF16 checkpoint (2 bytes per parameter) and quantizes on load:
# the download is larger than the weights the planner counts in GPU memory.
CHECKPOINT_FACTOR = {api.Quantization.FP8: 2.0, api.Quantization.BITSANDBYTES: 4.0}


def checkpoint_bytes(spec: api.LLMDeploymentSpec, weights_bytes: int | None) -> int | None:
    """What the checkpoint weighs on disk: the planner's weights, times the factor of online quantization."""
    if weights_bytes is None:
        return None
    return int(weights_bytes * CHECKPOINT_FACTOR.get(api.Quantization(spec.quantization), 1.0))


def cache_size_limit(spec: api.LLMDeploymentSpec, weights_bytes: int | None, shared_cache: bool = False) -> str:
    """sizeLimit of the cache emptyDir: the checkpoint (when downloaded into it) plus headroom."""
    if spec.model.uri.startswith("hf://") and not shared_cache:
        if weights_bytes is None:
            return f"{DEFAULT_CACHE_GIB}Gi"
        checkpoint = checkpoint_bytes(spec, weights_bytes) or 0
        return f"{math.ceil(checkpoint / GIB * CACHE_OVERHEAD + CACHE_HEADROOM_GIB)}Gi"
    # pvc://, file:// and the shared cache: read in place; s3://, gs://: streamed by the Run:ai streamer.
    return f"{CACHE_HEADROOM_GIB}Gi"


def cache_env() -> list[dict[str, str]]:
    """Runtime caches and HOME inside the cache volume (writable by any UID, size-limited)."""
    return vllm_env.cache_env(CACHE_MOUNT)


def _restricted(spec: api.LLMDeploymentSpec) -> bool:
    return bool(spec.pod_security == api.PodSecurity.RESTRICTED)


def container_security_context(spec: api.LLMDeploymentSpec) -> dict[str, Any]:
    """The vLLM container's securityContext."""
    ctx: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if _restricted(spec):
        ctx.update({"runAsNonRoot": True, "runAsUser": RESTRICTED_UID, "runAsGroup": RESTRICTED_UID})
    return ctx


def pod_security_context(spec: api.LLMDeploymentSpec) -> dict[str, Any]:
    """The pod's securityContext."""
    ctx: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if _restricted(spec):
        ctx.update({"runAsNonRoot": True, "runAsUser": RESTRICTED_UID, "runAsGroup": RESTRICTED_UID})
    return ctx


def credentials_env(spec: api.LLMDeploymentSpec) -> list[dict[str, Any]]:
    """Object-storage credentials from model.credentialsSecretRef, key by key (s3:// only; gs:// mounts a file)."""
    ref = spec.model.credentials_secret_ref
    if ref is None:
        return []
    if spec.model.uri.startswith("gs://"):
        path = f"{CREDENTIALS_MOUNT}/{vllm_env.GCS_CREDENTIALS_KEY}"
        return [{"name": vllm_env.GCS_CREDENTIALS_VARIABLE, "value": path}]
    return [
        {
            "name": key,
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": key, **({} if required else {"optional": True})}},
        }
        for key, required in vllm_env.S3_CREDENTIAL_KEYS
    ]


def credentials_volume(spec: api.LLMDeploymentSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """For gs://, the service-account key file from model.credentialsSecretRef, mounted read-only."""
    ref = spec.model.credentials_secret_ref
    if ref is None or not spec.model.uri.startswith("gs://"):
        return [], []
    key = vllm_env.GCS_CREDENTIALS_KEY
    volume = {
        "name": "storage-credentials",
        "secret": {"secretName": ref.name, "items": [{"key": key, "path": key}], "defaultMode": 0o444},
    }
    mount = {"name": "storage-credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True}
    return [volume], [mount]
