"""Pure: the shared model cache of an LLMDeployment — whether it has one, its PVC and download Job.

One cache per (namespace, model URI, revision): every LLMDeployment of that model in the namespace
reads the same PersistentVolumeClaim, filled once by one Job. Neither object has an owner
reference (no single LLMDeployment owns them); they carry the label `modelfleet.io/cache=<key>`,
their users are found by listing LLMDeployments, and the last user's `cache.reclaim` decides
whether they are deleted with it (see `reclaimable`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelfleet import api, engines, hardening
from modelfleet.engines.vllm import cache as vllm_cache

CACHE_LABEL = f"{api.GROUP}/cache"
URI_ANNOTATION = f"{api.GROUP}/model-uri"
REVISION_ANNOTATION = f"{api.GROUP}/revision"
RECLAIM_ANNOTATION = f"{api.GROUP}/reclaim"
GIB = 1024**3
# Tokenizer, config and the odd extra file the repo carries beside the weights.
FIXED_HEADROOM_GIB = 1
SCRATCH_MOUNT = "/scratch"
_QUANTITY = re.compile(r"^([0-9]+)(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P)?$")
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


@dataclass(frozen=True)
class CacheDefaults:
    """The cluster-wide cache settings (chart values -> MODELFLEET_CACHE_* -> here)."""

    enabled: bool = False
    storage_class_name: str | None = None
    access_mode: str = api.CacheAccessMode.READ_WRITE_MANY.value
    headroom_percent: int = 10
    # The Job controller's own retries (10 s, 20 s, 40 s ... capped at 6 min between pods), each
    # resuming from the volume; 6 is Kubernetes' default.
    backoff_limit: int = 6


@dataclass(frozen=True)
class CacheRefusal:
    """The cache cannot be planned from this spec: why, in words that say what to change."""

    reason: str
    message: str


@dataclass(frozen=True)
class CachePlan:
    """Everything the PVC and the Job are rendered from."""

    key: str
    name: str
    namespace: str
    uri: str
    repo: str
    revision: str
    size: str
    expected_bytes: int | None  # the planner's checkpoint size (status.cache.bytesTotal)
    storage_class_name: str | None
    access_mode: str
    reclaim: str
    image: str
    token_ref: tuple[str, str] | None = None
    backoff_limit: int = 6
    restricted: bool = False
    labels: dict[str, str] = field(default_factory=dict)


def parse_quantity(text: str) -> int:
    """Bytes of a Kubernetes quantity as the cache size accepts it (whole numbers with a binary or SI suffix)."""
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size like 40Gi")
    return int(match.group(1)) * _UNITS[match.group(2) or ""]


def cache_key(namespace: str, uri: str, revision: str) -> str:
    """A DNS-safe digest of (namespace, model URI, revision): equal for every user of one cache."""
    return hashlib.sha256(f"{namespace}\n{uri}\n{revision}".encode()).hexdigest()[:10]


def cache_name(uri: str, key: str) -> str:
    """`cache-<model name>-<key>`: readable, unique by the key, a DNS label of at most 47 characters."""
    model = uri.removeprefix("hf://").split("/")[1] if uri.startswith("hf://") else "model"
    slug = re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")[:30].strip("-") or "model"
    return f"cache-{slug}-{key}"


def labels(key: str) -> dict[str, str]:
    """Labels of a cache's PVC, Job and download pod (never modelfleet.io/deployment: no single owner)."""
    return {
        "app.kubernetes.io/name": "modelfleet-cache",
        "app.kubernetes.io/component": "model-cache",
        "app.kubernetes.io/managed-by": api.MANAGED_BY,
        CACHE_LABEL: key,
    }


def enabled(spec: api.LLMDeploymentSpec, defaults: CacheDefaults) -> bool:
    """The spec's cache.enabled, else the cluster default; a default never applies to a URI it cannot fetch."""
    if spec.model.cache.enabled is not None:
        return bool(spec.model.cache.enabled)
    return defaults.enabled and spec.model.uri.startswith("hf://")


def revision(spec: api.LLMDeploymentSpec) -> str:
    """The Hugging Face revision the cache holds."""
    return spec.model.revision or vllm_cache.DEFAULT_REVISION


def key_of(llm: api.LLMDeployment, defaults: CacheDefaults) -> str | None:
    """The cache key an LLMDeployment uses, or None when it has no cache."""
    if not enabled(llm.spec, defaults):
        return None
    return cache_key(llm.namespace, llm.spec.model.uri, revision(llm.spec))


def checkpoint_bytes(spec: api.LLMDeploymentSpec, weights_bytes: int | None) -> int | None:
    """What the download brings: the planner's weight size, times the checkpoint factor of online quantization."""
    return hardening.checkpoint_bytes(spec, weights_bytes)


def default_size(checkpoint: int | None, headroom_percent: int) -> str:
    """Checkpoint + headroom, in whole GiB; the emptyDir default when the planner does not know the model."""
    if checkpoint is None:
        return f"{hardening.DEFAULT_CACHE_GIB}Gi"
    return f"{math.ceil(checkpoint * (1 + headroom_percent / 100) / GIB) + FIXED_HEADROOM_GIB}Gi"


def _refusal(spec: api.LLMDeploymentSpec, checkpoint: int | None) -> CacheRefusal | None:
    uri = spec.model.uri
    if not uri.startswith("hf://"):
        return CacheRefusal("CacheUnsupportedURI", api.CACHE_URI_MESSAGE)
    if len(uri.removeprefix("hf://").split("/")) > 2:
        return CacheRefusal(
            "CacheUnsupportedURI",
            f"model.cache downloads whole repositories; {uri} names a file: use hf://<org>/<name> "
            "or turn the cache off",
        )
    size = spec.model.cache.size
    if size is not None and checkpoint is not None and parse_quantity(size) < checkpoint:
        need = math.ceil(checkpoint / GIB)
        return CacheRefusal(
            "CacheTooSmall",
            f"model.cache.size {size} ({parse_quantity(size) / GIB:.1f} GiB) is smaller than the model's "
            f"checkpoint, {checkpoint / GIB:.1f} GiB by the planner: set model.cache.size to at least {need}Gi "
            "or leave it unset (checkpoint + headroom)",
        )
    return None


def reclaim_of(users: Iterable[api.LLMDeployment]) -> str:
    """Delete only when every user of the cache asks for it: one Retain keeps the data."""
    wanted = {str(u.spec.model.cache.reclaim) for u in users}
    return api.CacheReclaim.DELETE.value if wanted == {api.CacheReclaim.DELETE.value} else api.CacheReclaim.RETAIN.value


def plan(
    llm: api.LLMDeployment,
    weights_bytes: int | None,
    defaults: CacheDefaults,
    neighbours: Sequence[api.LLMDeployment] = (),
) -> CachePlan | CacheRefusal | None:
    """The cache of one LLMDeployment (None: it has none). `neighbours`: the other LLMDeployments of its
    namespace; those with the same key share the cache and its reclaim decision."""
    spec = llm.spec
    if not enabled(spec, defaults):
        return None
    checkpoint = checkpoint_bytes(spec, weights_bytes)
    refusal = _refusal(spec, checkpoint)
    if refusal is not None:
        return refusal
    rev = revision(spec)
    key = cache_key(llm.namespace, spec.model.uri, rev)
    users = [llm, *(n for n in neighbours if n.name != llm.name and key_of(n, defaults) == key)]
    token = spec.model.token_secret_ref
    image = engines.engine_for(spec.engine).image  # the server's own image: its huggingface_hub, its CLI
    return CachePlan(
        key=key,
        name=cache_name(spec.model.uri, key),
        namespace=llm.namespace,
        uri=spec.model.uri,
        repo=spec.model.uri.removeprefix("hf://"),
        revision=rev,
        size=spec.model.cache.size or default_size(checkpoint, defaults.headroom_percent),
        expected_bytes=checkpoint,
        storage_class_name=spec.model.cache.storage_class_name or defaults.storage_class_name,
        access_mode=str(spec.model.cache.access_mode or defaults.access_mode),
        reclaim=reclaim_of(users),
        image=image,
        token_ref=(token.name, token.key) if token else None,
        backoff_limit=defaults.backoff_limit,
        restricted=spec.pod_security == api.PodSecurity.RESTRICTED,
        labels=labels(key),
    )


def _metadata(p: CachePlan) -> dict[str, Any]:
    return {
        "name": p.name,
        "namespace": p.namespace,
        "labels": dict(p.labels),
        "annotations": {URI_ANNOTATION: p.uri, REVISION_ANNOTATION: p.revision, RECLAIM_ANNOTATION: p.reclaim},
    }


def pvc(p: CachePlan) -> dict[str, Any]:
    """The cache's PersistentVolumeClaim."""
    spec: dict[str, Any] = {"accessModes": [p.access_mode], "resources": {"requests": {"storage": p.size}}}
    if p.storage_class_name:
        spec["storageClassName"] = p.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": _metadata(p), "spec": spec}


def job(p: CachePlan) -> dict[str, Any]:
    """The download Job: the engine's image and CLI, into the PVC, retried by the Job controller."""
    command, args = vllm_cache.download_command(p.repo, p.revision)
    security: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod_security: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    if p.restricted:
        uid = hardening.RESTRICTED_UID
        security.update({"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid})
        # fsGroup makes the fresh volume writable by the non-root UID (where the volume type supports it).
        pod_security.update({"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid})
    container = {
        "name": "download",
        "image": p.image,
        "command": command,
        "args": args,
        "env": vllm_cache.download_env(p.token_ref, SCRATCH_MOUNT),
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "volumeMounts": [{"name": "cache", "mountPath": vllm_cache.CACHE_MOUNT},
                         {"name": "scratch", "mountPath": SCRATCH_MOUNT}],
        "securityContext": security,
        # A failed download's last log lines become its termination message: status.cache.lastError.
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _metadata(p),
        "spec": {
            "backoffLimit": p.backoff_limit,
            # No ttlSecondsAfterFinished: the finished Job is the record that the volume holds the model.
            "template": {
                "metadata": {"labels": dict(p.labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [
                        {"name": "cache", "persistentVolumeClaim": {"claimName": p.name}},
                        {"name": "scratch", "emptyDir": {"sizeLimit": "2Gi"}},
                    ],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security,
                },
            },
        },
    }


def reclaimable(
    pvcs: Sequence[dict[str, Any]], llms: Sequence[api.LLMDeployment], defaults: CacheDefaults
) -> list[str]:
    """Names of cache PVCs (and Jobs) to delete: reclaim Delete, and no live LLMDeployment uses their key."""
    used = {key_of(llm, defaults) for llm in llms if not llm.metadata.get("deletionTimestamp")}
    out = []
    for claim in pvcs:
        meta = claim.get("metadata") or {}
        key = (meta.get("labels") or {}).get(CACHE_LABEL)
        if key and key not in used and (meta.get("annotations") or {}).get(RECLAIM_ANNOTATION) == "Delete":
            out.append(str(meta["name"]))
    return sorted(out)


def users(bodies: Iterable[dict[str, Any]], namespace: str, key: str, defaults: CacheDefaults) -> list[str]:
    """Names of the LLMDeployments (raw bodies) in `namespace` whose cache is `key`."""
    found = []
    for body in bodies:
        if (body.get("metadata") or {}).get("namespace") != namespace:
            continue
        try:
            llm = api.LLMDeployment.model_validate(body)
        except ValueError:
            continue
        if key_of(llm, defaults) == key:
            found.append(llm.name)
    return sorted(found)
