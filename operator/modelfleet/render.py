"""Pure rendering: an LLMDeployment (+ the fit plan's choices) -> its child objects.

Nothing here talks to a cluster; `modelfleet render` and the reconciler share it.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from modelfleet import api, engines, hardening, startup

CONFIG_HASH_ANNOTATION = f"{api.GROUP}/config-hash"
MODELS_MOUNT = "/models"
# vLLM keeps serving in-flight requests after SIGTERM; the grace period bounds how long a
# busy pod may drain, and the preStop sleep lets endpoints drop the pod before SIGTERM.
TERMINATION_GRACE_SECONDS = 120
PRESTOP_SLEEP_SECONDS = 10


@dataclass(frozen=True)
class RenderChoices:
    """What the reconciler decided beyond the spec: replica count, the chosen context length, and
    the planner's weight size (None when the model is unknown), which sizes the cache volume, and
    the shared model cache's claim when the model comes from one."""

    replicas: int
    max_model_len: int | None = None
    weights_bytes: int | None = None
    cache_claim: str | None = None  # the shared model cache's PVC, mounted read-only (cache.py)


def endpoint(llm: api.LLMDeployment) -> str:
    """The OpenAI base URL clients in the cluster use."""
    return f"http://{llm.name}.{llm.namespace}.svc:{api.VLLM_PORT}/v1"


def engine(llm: api.LLMDeployment) -> engines.Engine:
    """The engine release the spec selects (raises engines.EngineSpecError when none applies)."""
    return engines.engine_for(llm.spec.engine)


def vllm_args(llm: api.LLMDeployment, choices: RenderChoices) -> list[str]:
    """The full server argument list (secrets never appear here: they come through env)."""
    return engine(llm).args(llm.spec, llm.served_name, choices.max_model_len, MODELS_MOUNT)


def startup_seconds(llm: api.LLMDeployment, choices: RenderChoices) -> int:
    """The startup probe's budget: the spec's, else from the checkpoint size (startup.py)."""
    checkpoint = hardening.checkpoint_bytes(llm.spec, choices.weights_bytes)
    return startup.budget_seconds(llm.spec, checkpoint, choices.cache_claim is not None)


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def _resources(spec: api.LLMDeploymentSpec) -> dict[str, Any]:
    gpus = {"nvidia.com/gpu": str(spec.gpu.count)}
    return {
        "requests": {**spec.engine.resources.requests, **gpus},
        "limits": {**spec.engine.resources.limits, **gpus},
    }


def _volumes(llm: api.LLMDeployment, choices: RenderChoices) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    spec = llm.spec
    cache_limit = hardening.cache_size_limit(spec, choices.weights_bytes, choices.cache_claim is not None)
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.engine.shm_size}},
        {"name": "cache", "emptyDir": {"sizeLimit": cache_limit}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "dshm", "mountPath": "/dev/shm"},
        {"name": "cache", "mountPath": "/cache"},
    ]
    scheme, _, rest = spec.model.uri.partition("://")
    if scheme == "pvc":
        claim = rest.split("/", 1)[0]
        volumes.append({"name": "model", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": "model", "mountPath": f"{MODELS_MOUNT}/{claim}", "readOnly": True})
    if choices.cache_claim is not None:
        source = {"claimName": choices.cache_claim, "readOnly": True}
        volumes.append({"name": "model-cache", "persistentVolumeClaim": source})
        mounts.append({"name": "model-cache", "mountPath": engine(llm).cache_mount, "readOnly": True})
    extra_volumes, extra_mounts = hardening.credentials_volume(spec)
    return volumes + extra_volumes, mounts + extra_mounts


def _container(llm: api.LLMDeployment, choices: RenderChoices, mounts: list[dict[str, Any]]) -> dict[str, Any]:
    spec = llm.spec
    server = engine(llm)
    return {
        "name": "vllm",
        "image": server.image,
        "command": list(server.command),
        "args": server.args(spec, llm.served_name, choices.max_model_len, MODELS_MOUNT),
        # The engine's variables, then every runtime cache into the cache volume and the storage credentials.
        "env": [*server.env(spec), *hardening.cache_env(), *hardening.credentials_env(spec),
                *(server.cache_env() if choices.cache_claim else [])],
        "ports": [{"name": "http", "containerPort": server.port, "protocol": "TCP"}],
        "resources": _resources(spec),
        "volumeMounts": mounts,
        # Loading weights (disk -> RAM -> GPU -> warm-up) can take many minutes: the startup
        # probe holds liveness off until /health answers, up to startupTimeoutSeconds.
        "startupProbe": _probe(server.health_path, 10, max(1, math.ceil(startup_seconds(llm, choices) / 10))),
        "readinessProbe": _probe(server.health_path, 5, 3),
        "livenessProbe": _probe(server.health_path, 10, 6),
        "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}},
        "securityContext": hardening.container_security_context(spec),
    }


def _pod_spec(llm: api.LLMDeployment, choices: RenderChoices) -> dict[str, Any]:
    spec = llm.spec
    sched = spec.scheduling
    node_selector = dict(sched.node_selector)
    if spec.gpu.product:
        node_selector["nvidia.com/gpu.product"] = spec.gpu.product
    # GPU nodes commonly carry this taint so that only GPU workloads land on them.
    tolerations = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}, *sched.tolerations]
    volumes, mounts = _volumes(llm, choices)
    pod: dict[str, Any] = {
        "containers": [_container(llm, choices, mounts)],
        "volumes": volumes,
        "tolerations": tolerations,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": hardening.pod_security_context(spec),
    }
    if node_selector:
        pod["nodeSelector"] = node_selector
    optional = {
        "affinity": sched.affinity,
        "priorityClassName": sched.priority_class_name,
        "runtimeClassName": sched.runtime_class_name,
        "serviceAccountName": sched.service_account_name,
    }
    pod.update({k: v for k, v in optional.items() if v})
    return pod


def config_hash(obj: dict[str, Any]) -> str:
    """A stable digest of an object's desired content, so unchanged children are not re-applied."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _metadata(llm: api.LLMDeployment) -> dict[str, Any]:
    return {"name": llm.name, "namespace": llm.namespace, "labels": api.labels(llm.name)}


def deployment(llm: api.LLMDeployment, choices: RenderChoices) -> dict[str, Any]:
    """The vLLM Deployment."""
    labels = api.labels(llm.name)
    startup = startup_seconds(llm, choices)
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(llm),
        "spec": {
            "selector": {"matchLabels": api.selector_labels(llm.name)},
            # A new pod needs its own GPUs before an old one goes: no capacity drop during a
            # rollout, at the price of one spare replica's GPUs.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": startup + 600,
            "revisionHistoryLimit": 3,
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(api.VLLM_PORT),
                        "prometheus.io/path": engine(llm).metrics_path,
                    },
                },
                "spec": _pod_spec(llm, choices),
            },
        },
    }
    # The hash leaves replicas out: the autoscaler changes them without a new config.
    body["metadata"]["annotations"] = {CONFIG_HASH_ANNOTATION: config_hash(body)}
    body["spec"]["replicas"] = choices.replicas
    return body


def service(llm: api.LLMDeployment) -> dict[str, Any]:
    """The ClusterIP Service on the OpenAI port."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(llm),
        "spec": {
            "type": "ClusterIP",
            "selector": api.selector_labels(llm.name),
            "ports": [{"name": "http", "port": api.VLLM_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    body["metadata"]["annotations"] = {CONFIG_HASH_ANNOTATION: config_hash(body)}
    return body


def render(llm: api.LLMDeployment, choices: RenderChoices) -> list[dict[str, Any]]:
    """Every child object of one LLMDeployment, in apply order: the Deployment first.

    Replicas take minutes to load a model, and a ClusterIP Service can take seconds to create in a mass
    rollout (kube-apiserver allocates cluster IPs one at a time, each an API write of its own); status,
    written after both, never says Ready before the Service exists."""
    return [deployment(llm, choices), service(llm)]


def with_owner(obj: dict[str, Any], owner: dict[str, Any]) -> dict[str, Any]:
    """A copy of a child with a controller owner reference, so garbage collection removes it."""
    meta = owner["metadata"]
    ref = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [ref]}}
