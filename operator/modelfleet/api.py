"""The LLMDeployment API: spec and status models, names and labels.

These pydantic models are the one source of truth: `crd.py` generates the CRD's
OpenAPI schema from them, and the operator parses every object through them.
CEL rules that the schema cannot express live here too (`x-kubernetes-validations`),
next to the field they guard, and each has a pydantic twin so that `modelfleet render`
refuses the same input the API server refuses.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator
from pydantic.alias_generators import to_camel

from modelfleet import validation
from modelfleet.engines import vllm as vllm_engine
from modelfleet.engines.vllm.env import ENV_NAME_PATTERN, cel_owned

GROUP = "modelfleet.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "LLMDeployment"
PLURAL = "llmdeployments"
SINGULAR = "llmdeployment"
SHORT_NAMES = ["llm"]
FIELD_MANAGER = "modelfleet"
DEPLOYMENT_LABEL = f"{GROUP}/deployment"
MANAGED_BY = "modelfleet"
# Engine knowledge lives in modelfleet.engines; these names stay here for the CRD and callers.
VLLM_PORT = vllm_engine.VLLMEngine.port
DEFAULT_VLLM_VERSION = vllm_engine.DEFAULT_VERSION
SUPPORTED_VLLM_VERSIONS = vllm_engine.SUPPORTED_VERSIONS
DEFAULT_IMAGE = vllm_engine.image_for(DEFAULT_VLLM_VERSION)
OFFICIAL_IMAGE_PATTERN = vllm_engine.OFFICIAL_IMAGE_PATTERN
# vLLM options that a spec field owns (every spelling of every supported release): passing
# them in engine.args would contradict the field.
OWNED_FLAGS: dict[str, str] = vllm_engine.owned_flags_all_versions()


# The name becomes the Deployment's and the Service's: a DNS-1035 label, kept short enough
# for the pod names the ReplicaSet derives from it.
NAME_PATTERN = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
MAX_NAME_LENGTH = 52
NAME_MESSAGE = (
    f"metadata.name must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters "
    "(lower-case letters, digits and '-', starting with a letter): it names the Deployment and Service"
)


def _check_flag(arg: str) -> str:
    problem = validation.arg_problem(arg, OWNED_FLAGS)
    if problem:
        raise ValueError(problem)
    return arg


def cel(rule: str, message: str, **extra: str) -> JsonValue:
    """One `x-kubernetes-validations` entry."""
    return {"rule": rule, "message": message, **extra}


class _Model(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )


class Quantization(StrEnum):
    """Weight quantization; `none` serves the checkpoint's own dtype (BF16/FP16)."""

    NONE = "none"
    AWQ = "awq"
    GPTQ = "gptq"
    FP8 = "fp8"
    BITSANDBYTES = "bitsandbytes"
    GGUF = "gguf"


class KVCacheDtype(StrEnum):
    """vLLM's --kv-cache-dtype; `auto` uses the model dtype."""

    AUTO = "auto"
    FP8 = "fp8"
    FP8_E4M3 = "fp8_e4m3"
    FP8_E5M2 = "fp8_e5m2"


SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


class SecretKeyRef(_Model):
    """A key in a Secret in the LLMDeployment's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN, description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key within the Secret.")


class SecretRef(_Model):
    """A whole Secret in the LLMDeployment's namespace (its keys are read by fixed names)."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN, description="Name of the Secret.")


class PodSecurity(StrEnum):
    """How far the model pods are locked down (both drop every capability and use seccomp)."""

    DEFAULT = "default"
    RESTRICTED = "restricted"


class Architecture(_Model):
    """The numbers of a decoder that the GPU fit check needs (from the model's config.json)."""

    num_layers: int = Field(ge=1, le=1024, description="Transformer layers (num_hidden_layers).")
    num_attention_heads: int = Field(ge=1, le=1024, description="Query heads (num_attention_heads).")
    num_key_value_heads: int = Field(
        ge=1, le=1024, description="Key/value heads (num_key_value_heads; equals attention heads without GQA)."
    )
    head_dim: int = Field(ge=1, le=4096, description="Dimension of one attention head.")
    parameters: float = Field(gt=0, description="Total parameter count, e.g. 8.03e9.")
    max_position_embeddings: int | None = Field(
        default=None, ge=1, description="Longest context the model supports (caps the chosen maxModelLen)."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.numAttentionHeads % self.numKeyValueHeads == 0",
                    "numAttentionHeads must be a multiple of numKeyValueHeads",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> Architecture:
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("numAttentionHeads must be a multiple of numKeyValueHeads")
        return self


class CacheReclaim(StrEnum):
    """What happens to a cache's volume when its last LLMDeployment is deleted."""

    RETAIN = "Retain"
    DELETE = "Delete"


class CacheAccessMode(StrEnum):
    """Access mode of the cache's PersistentVolumeClaim (the download writes, replicas mount read-only)."""

    READ_WRITE_MANY = "ReadWriteMany"
    READ_WRITE_ONCE = "ReadWriteOnce"


QUANTITY_PATTERN = r"^[0-9]+(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P)?$"
CACHE_URI_MESSAGE = (
    "model.cache downloads hf:// models only: for file:// put the weights on a volume and use "
    "pvc://<claim>/<path>, or use hf://<org>/<name> to have them downloaded once; pvc:// is already a volume "
    "and s3:// / gs:// are streamed to the GPUs, so leave cache.enabled unset for them"
)


class CacheSpec(_Model):
    """A shared model cache: one PersistentVolumeClaim and one download Job per (namespace, model, revision)."""

    enabled: bool | None = Field(
        default=None, description="Download the model once into a shared volume; default: the operator's setting "
        "(chart value cache.enabled, off unless set)."
    )
    size: str | None = Field(
        default=None,
        pattern=QUANTITY_PATTERN,
        max_length=32,
        description="Volume size, e.g. 40Gi; default: the planner's checkpoint size plus headroom.",
    )
    storage_class_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=SECRET_NAME_PATTERN,
        description="StorageClass of the volume; default: the operator's setting, else the cluster's default class.",
    )
    access_mode: CacheAccessMode | None = Field(
        default=None,
        description="ReadWriteMany (default: replicas on many nodes read one volume) or ReadWriteOnce (every "
        "replica then has to run on the node that mounts it).",
    )
    reclaim: CacheReclaim = Field(
        default=CacheReclaim.RETAIN,
        description="Retain: the downloaded data stays when the last LLMDeployment using it is deleted. Delete: "
        "the volume and the download Job are deleted with the last user.",
    )


def _check_uri(uri: str) -> str:
    problem = validation.uri_problem(uri)
    if problem:
        raise ValueError(problem)
    return uri


class ModelSpec(_Model):
    """Which model to serve and where its weights come from."""

    uri: Annotated[str, AfterValidator(_check_uri)] = Field(
        max_length=validation.MAX_URI_LENGTH,
        description="hf://org/name, pvc://claim/path, s3://bucket/path, gs://bucket/path or file:///path.",
        json_schema_extra={"x-kubernetes-validations": validation.uri_cel_rules()},  # type: ignore[dict-item]
    )
    served_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$",
        description="Name clients send as `model`; defaults to metadata.name. Immutable once set.",
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self == oldSelf",
                    "servedName is immutable: clients and metrics depend on it; "
                    "create a new LLMDeployment to rename a model",
                )
            ]
        },
    )
    token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret holding a Hugging Face token (HF_TOKEN)."
    )
    architecture: Architecture | None = Field(
        default=None, description="Model shape for the fit check; looked up in the catalog when omitted."
    )
    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        description="Hugging Face revision (branch, tag or commit) for hf:// models: vLLM's --revision and the "
        "cache's key. Default: main.",
    )
    cache: CacheSpec = Field(default_factory=lambda: CacheSpec(), description="Shared model cache (hf:// only).")
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with object-storage credentials, for s3:// and gs:// only. s3: keys AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL; gs: key key.json "
        "(a service-account key). Only these keys are read.",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.credentialsSecretRef) || self.uri.startsWith('s3://') || self.uri.startsWith('gs://')",
                    "model.credentialsSecretRef is only for s3:// and gs:// URIs; "
                    "use tokenSecretRef for hf:// and remove it for pvc:// and file://",
                ),
                cel(
                    "!has(self.cache) || !has(self.cache.enabled) || !self.cache.enabled || self.uri.startsWith('hf://')",
                    CACHE_URI_MESSAGE,
                ),
                cel("!has(self.revision) || self.uri.startsWith('hf://')", "model.revision is for hf:// URIs only"),
            ]
        }
    )

    @model_validator(mode="after")
    def _credentials_for_object_storage(self) -> ModelSpec:
        if self.credentials_secret_ref and not self.uri.startswith(("s3://", "gs://")):
            raise ValueError(
                "model.credentialsSecretRef is only for s3:// and gs:// URIs; "
                "use tokenSecretRef for hf:// and remove it for pvc:// and file://"
            )
        if self.cache.enabled and not self.uri.startswith("hf://"):
            raise ValueError(CACHE_URI_MESSAGE)
        if self.revision and not self.uri.startswith("hf://"):
            raise ValueError("model.revision is for hf:// URIs only")
        return self


class GPUSpec(_Model):
    """GPUs per replica."""

    count: int = Field(
        default=1, ge=1, le=16, description="GPUs per replica: --tensor-parallel-size and nvidia.com/gpu."
    )
    product: str | None = Field(
        default=None,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Value of the node label nvidia.com/gpu.product, e.g. NVIDIA-H100-80GB-HBM3.",
    )
    memory_gi_b: float | None = Field(
        default=None,
        alias="memoryGiB",
        gt=0,
        le=1024,
        description="Memory of one GPU in GiB; overrides the value known for the product.",
    )


class ResourcesSpec(_Model):
    """Container requests and limits besides the GPUs."""

    requests: dict[str, str] = Field(default_factory=dict, description="e.g. {cpu: '8', memory: 64Gi}.")
    limits: dict[str, str] = Field(default_factory=dict, description="e.g. {memory: 96Gi}.")

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(!has(self.requests) || !('nvidia.com/gpu' in self.requests)) && "
                    "(!has(self.limits) || !('nvidia.com/gpu' in self.limits))",
                    "nvidia.com/gpu is set from gpu.count; remove it from engine.resources",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _no_gpus(self) -> ResourcesSpec:
        if "nvidia.com/gpu" in self.requests or "nvidia.com/gpu" in self.limits:
            raise ValueError("nvidia.com/gpu is set from gpu.count; remove it from engine.resources")
        return self


class EngineSpec(_Model):
    """The vLLM server."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    f"!has(self.image) || has(self.version) || self.image.matches('{OFFICIAL_IMAGE_PATTERN}')",
                    "engine.version is required with a custom engine.image: it says which vLLM release's "
                    f"flags to render (supported: {', '.join(SUPPORTED_VLLM_VERSIONS)})",
                ),
            ]
        }
    )

    @field_validator("version")
    @classmethod
    def _supported_version(cls, value: str | None) -> str | None:
        if value is not None and value not in SUPPORTED_VLLM_VERSIONS:
            raise ValueError(
                f"{value} is not a supported vLLM release (supported: {', '.join(SUPPORTED_VLLM_VERSIONS)})"
            )
        return value

    version: str | None = Field(
        default=None,
        description=(
            f"vLLM release whose flags are rendered ({', '.join(SUPPORTED_VLLM_VERSIONS)}); default: the tag of "
            f"an official vllm/vllm-openai image, else {DEFAULT_VLLM_VERSION}. Required with a custom image."
        ),
        json_schema_extra={"enum": list(SUPPORTED_VLLM_VERSIONS)},
    )
    image: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
        description="Container image; default vllm/vllm-openai:v<version>. A custom image needs engine.version.",
    )
    max_model_len: int | None = Field(
        default=None,
        ge=16,
        le=10_000_000,
        description="--max-model-len; when omitted the largest that fits is chosen (see status.capacity).",
    )
    gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1, description="--gpu-memory-utilization, in (0, 1].")
    max_num_seqs: int = Field(default=256, ge=1, le=65536, description="--max-num-seqs.")
    enable_prefix_caching: bool = Field(default=True, description="--enable-prefix-caching.")
    kv_cache_dtype: KVCacheDtype = Field(default=KVCacheDtype.AUTO, description="--kv-cache-dtype.")
    args: list[Annotated[str, AfterValidator(_check_flag)]] = Field(
        default_factory=list,
        max_length=64,
        description="Extra `vllm serve` flags; flags owned by other fields are refused.",
        json_schema_extra={
            "items": {
                "type": "string",
                "maxLength": 1024,
                "pattern": validation.ARG_PATTERN,
                "x-kubernetes-validations": validation.args_cel_rules(list(OWNED_FLAGS)),  # type: ignore[dict-item]
            }
        },
    )

    env: dict[str, str] = Field(
        default_factory=dict,
        max_length=validation.MAX_ENV_ENTRIES,
        description="Extra environment variables. Names the operator sets or that steer credentials "
        "(VLLM_API_KEY, HF_TOKEN, HF_ENDPOINT, HF_HOME, HF_HUB_*, AWS_*, ...) are refused: see docs/security.md.",
        json_schema_extra={
            "maxProperties": validation.MAX_ENV_ENTRIES,
            "additionalProperties": {
                "type": "string",
                "maxLength": validation.MAX_ENV_VALUE_LENGTH,
                "pattern": validation.ENV_VALUE_PATTERN,
            },
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, k.matches('{ENV_NAME_PATTERN}'))",
                    "message": "engine.env: names are letters, digits, '_', '-' and '.', not starting with a digit",
                },
                {
                    "rule": f"self.all(k, !({cel_owned('k')}))",
                    "messageExpression": f"'engine.env: ' + self.filter(k, {cel_owned('k')})[0] + "
                    "' is set by modelfleet or steers credentials; use the spec field for it (docs/security.md)'",
                },
            ],
        },
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            problem = validation.env_problem(name, item)
            if problem:
                raise ValueError(f"engine.env: {problem}")
        return value
    shm_size: str = Field(
        default="8Gi",
        pattern=r"^[0-9]+(Mi|Gi)$",
        description="Size of the memory-backed /dev/shm (NCCL needs it with tensor parallelism).",
    )
    startup_timeout_seconds: int | None = Field(
        default=None,
        ge=60,
        le=86400,
        description="How long the startup probe waits for the model to download, load and warm up before the pod "
        "is restarted. Default: from the checkpoint size, 300 s + download at 50 MiB/s (hf:// without the shared "
        "cache) + load at 200 MiB/s, at least 1800 s.",
    )
    resources: ResourcesSpec = Field(
        default_factory=lambda: ResourcesSpec(),
        description="Extra container requests/limits (cpu, memory); nvidia.com/gpu comes from gpu.count.",
    )


class AutoscalingSpec(_Model):
    """Queue-depth autoscaling; replicas go to the child Deployment and status, never to spec."""

    enabled: bool = Field(default=False, description="Scale by queue depth instead of spec.replicas.")
    min_replicas: int = Field(default=1, ge=1, le=1000, description="Lowest replica count.")
    max_replicas: int = Field(default=4, ge=1, le=1000, description="Highest replica count.")
    target_queue_depth: float = Field(
        default=4, gt=0, le=100000, description="Waiting requests per ready replica to aim for."
    )
    scale_up_stabilization_seconds: int = Field(
        default=0, ge=0, le=3600, description="How long a higher recommendation must hold before scaling up."
    )
    scale_down_stabilization_seconds: int = Field(
        default=300, ge=0, le=86400, description="How long a lower recommendation must hold before scaling down."
    )
    max_scale_up_step: int = Field(default=4, ge=1, le=1000, description="Most replicas added at once.")
    max_scale_down_step: int = Field(default=1, ge=1, le=1000, description="Most replicas removed at once.")
    tolerance: float = Field(
        default=0.1, ge=0, lt=1, description="Relative band around the target inside which nothing changes."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                # has(): the API server also checks this rule against the bare `default: {}`.
                cel(
                    "!has(self.minReplicas) || !has(self.maxReplicas) || self.minReplicas <= self.maxReplicas",
                    "minReplicas must be <= maxReplicas",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must be <= maxReplicas")
        return self


class SchedulingSpec(_Model):
    """Pod scheduling fields, passed through to the pod template."""

    node_selector: dict[str, str] = Field(default_factory=dict, description="Extra node selector labels.")
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Pod tolerations, as in a pod spec.",
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )
    affinity: dict[str, Any] | None = Field(
        default=None,
        description="Pod affinity, as in a pod spec.",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )
    priority_class_name: str | None = Field(default=None, max_length=253, description="Pod priority class.")
    runtime_class_name: str | None = Field(default=None, max_length=253, description="Pod runtime class.")
    service_account_name: str | None = Field(
        default=None, max_length=253, description="Service account of the model pods."
    )


class LLMDeploymentSpec(_Model):
    """Desired state of one served model."""

    model: ModelSpec
    quantization: Quantization = Field(default=Quantization.NONE, description="Weight quantization.")
    gpu: GPUSpec = Field(default_factory=GPUSpec)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    replicas: int = Field(default=1, ge=0, le=1000, description="Replicas when autoscaling is off.")
    autoscaling: AutoscalingSpec = Field(default_factory=AutoscalingSpec)
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret with the API key vLLM requires on /v1 (VLLM_API_KEY)."
    )
    scheduling: SchedulingSpec = Field(default_factory=SchedulingSpec)
    pod_security: PodSecurity = Field(
        default=PodSecurity.DEFAULT,
        description="default: no privilege escalation, every capability dropped, seccomp RuntimeDefault, no "
        "service-account token. restricted: also a non-root UID with writable cache dirs, so the pods are "
        "admitted where the PodSecurity `restricted` level is enforced.",
    )


class Condition(_Model):
    """A standard Kubernetes condition."""

    type: str
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class Capacity(_Model):
    """What the fit check found for one replica."""

    weights_gi_b: float | None = Field(default=None, alias="weightsGiB")
    kv_cache_tokens: int | None = None
    max_concurrent_sequences: int | None = None
    max_model_len: int | None = None
    max_model_len_source: str | None = Field(
        default=None, description="`spec` when set by the user, `planner` when chosen by the operator."
    )
    min_tensor_parallel_size: int | None = None


class AutoscalerStatus(_Model):
    """The autoscaler's last decision and the state it needs across restarts."""

    queue_depth: float | None = None
    running: float | None = None
    kv_cache_usage: float | None = None
    desired_replicas: int | None = None
    decision: str | None = None
    reason: str | None = None
    last_decision_time: str | None = None
    last_scale_time: str | None = None
    recommendations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Recent (time, replicas) recommendations kept for the stabilization windows.",
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )


class CacheStatus(_Model):
    """The shared model cache this LLMDeployment reads from."""

    claim: str | None = Field(default=None, description="The PersistentVolumeClaim (the download Job has its name).")
    phase: str | None = Field(default=None, description="Pending, Downloading, Ready or Failed.")
    bytes_done: int | None = None
    bytes_total: int | None = Field(default=None, description="Expected size (the planner's checkpoint size).")
    last_error: str | None = None


class LLMDeploymentStatus(_Model):
    """Observed state, written by the operator only."""

    observed_generation: int | None = None
    phase: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
    replicas: int | None = None
    ready_replicas: int | None = None
    desired_replicas: int | None = None
    replica_phases: dict[str, int] | None = Field(
        default=None,
        description="Replicas by start-up phase: serving, loading (weights local), downloadingOrLoading (the pod "
        "fetches hf:// itself), pending.",
    )
    endpoint: str | None = None
    selector: str | None = None
    capacity: Capacity | None = None
    autoscaler: AutoscalerStatus | None = None
    cache: CacheStatus | None = None


class LLMDeployment(_Model):
    """A whole LLMDeployment object as read from a file or the API."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(default=API_VERSION, pattern=rf"^{GROUP}/{VERSION}$")
    kind: str = Field(default=KIND, pattern=rf"^{KIND}$")
    metadata: dict[str, Any]
    spec: LLMDeploymentSpec
    status: LLMDeploymentStatus | None = None

    @field_validator("metadata")
    @classmethod
    def _name(cls, value: dict[str, Any]) -> dict[str, Any]:
        name = str(value.get("name") or "")
        if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
            raise ValueError(NAME_MESSAGE)
        return value

    @property
    def name(self) -> str:
        """metadata.name."""
        return str(self.metadata["name"])

    @property
    def namespace(self) -> str:
        """metadata.namespace, `default` when absent (as kubectl would)."""
        return str(self.metadata.get("namespace") or "default")

    @property
    def served_name(self) -> str:
        """The model name clients use."""
        return self.spec.model.served_name or self.name


def labels(name: str) -> dict[str, str]:
    """Labels on every child object of the LLMDeployment `name`."""
    return {
        DEPLOYMENT_LABEL: name,
        "app.kubernetes.io/name": "vllm",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector_labels(name: str) -> dict[str, str]:
    """The stable subset of labels used in selectors (a Deployment selector is immutable)."""
    return {DEPLOYMENT_LABEL: name}


def selector_string(name: str) -> str:
    """`status.selector` for the scale subresource."""
    return ",".join(f"{k}={v}" for k, v in selector_labels(name).items())
