"""`vllm serve` arguments and container environment from an LLMDeployment spec (pure).

Secrets never appear in arguments: the API key and the Hugging Face token come through env
from Secrets (vLLM reads VLLM_API_KEY when --api-key is absent).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelfleet.engines.vllm.table import FlagTable

if TYPE_CHECKING:
    from modelfleet.api import LLMDeploymentSpec

HOST = "0.0.0.0"
PORT = 8000
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
COMMAND = ["vllm", "serve"]
HF_HOME = "/cache/huggingface"


def model_argument(uri: str, models_mount: str) -> tuple[str, list[str]]:
    """The positional model argument for `vllm serve`, and any flags the source needs."""
    scheme, _, rest = uri.partition("://")
    if scheme == "hf":
        return rest, []
    if scheme == "pvc":
        return f"{models_mount}/{rest}", []
    if scheme == "file":
        return rest, []
    # vLLM reads object storage through the Run:ai model streamer.
    return uri, ["--load-format", "runai_streamer"]


def max_model_len_value(spec: LLMDeploymentSpec, planned: int | None, table: FlagTable) -> str | None:
    """--max-model-len: the spec's number; else `auto` where the release sizes it to the GPUs
    (the planner's number then only goes to status); else the planner's number; else nothing."""
    if spec.engine.max_model_len:
        return str(spec.engine.max_model_len)
    if table.features.get("max_model_len_auto"):
        return "auto"
    return str(planned) if planned else None


def serve_args(
    spec: LLMDeploymentSpec, served_name: str, planned_max_model_len: int | None, table: FlagTable, models_mount: str
) -> list[str]:
    """The full `vllm serve` argument list for one release."""
    model, source_flags = model_argument(spec.model.uri, models_mount)
    args = [
        model,
        "--served-model-name",
        served_name,
        "--host",
        HOST,
        "--port",
        str(PORT),
        "--tensor-parallel-size",
        str(spec.gpu.count),
        "--gpu-memory-utilization",
        str(spec.engine.gpu_memory_utilization),
        "--max-num-seqs",
        str(spec.engine.max_num_seqs),
    ]
    if spec.model.revision:
        args += ["--revision", spec.model.revision]
    if spec.quantization != "none":
        args += ["--quantization", str(spec.quantization)]
    max_model_len = max_model_len_value(spec, planned_max_model_len, table)
    if max_model_len:
        args += ["--max-model-len", max_model_len]
    if spec.engine.kv_cache_dtype != "auto":
        args += ["--kv-cache-dtype", str(spec.engine.kv_cache_dtype)]
    args.append("--enable-prefix-caching" if spec.engine.enable_prefix_caching else "--no-enable-prefix-caching")
    return args + source_flags + list(spec.engine.args)


def env(spec: LLMDeploymentSpec) -> list[dict[str, Any]]:
    """The container environment: cache location, Secret-backed token and API key, then the user's."""
    out: list[dict[str, Any]] = [{"name": "HF_HOME", "value": HF_HOME}]
    if spec.model.token_secret_ref:
        ref = spec.model.token_secret_ref
        out.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    if spec.api_key_secret_ref:
        ref = spec.api_key_secret_ref
        out.append({"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    out += [{"name": k, "value": v} for k, v in sorted(spec.engine.env.items())]
    return out
