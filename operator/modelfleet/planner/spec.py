"""The fit report for an LLMDeployment spec: the spec's model, GPU and engine -> `fit.plan`."""

from __future__ import annotations

from dataclasses import replace

from modelfleet.api import LLMDeploymentSpec
from modelfleet.engines.base import EngineSpecError
from modelfleet.engines.vllm.engine import resolve_version

from . import catalog
from .arch import ModelArch, from_api
from .fit import plan
from .gpus import lookup_gpu
from .quant import DEFAULT_GGUF_TYPE, gguf_type_from_uri
from .report import FitReport


def _spec_arch(spec: LLMDeploymentSpec) -> ModelArch | None:
    """spec.model.architecture, completed from the catalog when it is the same shape; else the catalog."""
    known = catalog.lookup(spec.model.uri)
    given = spec.model.architecture
    if given is None:
        return known
    arch = from_api(given, name=catalog.resolve_id(spec.model.uri) or spec.model.uri)
    same_shape = known is not None and (
        (known.num_layers, known.num_attention_heads, known.num_key_value_heads, known.head_dim)
        == (arch.num_layers, arch.num_attention_heads, arch.num_key_value_heads, arch.head_dim)
    )
    if known is not None and same_shape:
        arch = replace(
            known,
            parameters=arch.parameters,
            max_position_embeddings=arch.max_position_embeddings or known.max_position_embeddings,
        )
    return arch


def spec_quantization(spec: LLMDeploymentSpec) -> str:
    """The planner's quantization name for a spec (gguf: the type in the uri, else Q4_K_M)."""
    quantization = str(spec.quantization)
    if quantization == "gguf":
        return f"gguf-{gguf_type_from_uri(spec.model.uri) or DEFAULT_GGUF_TYPE}"
    return quantization


def plan_spec(spec: LLMDeploymentSpec) -> FitReport:
    """The fit report for an LLMDeployment spec.

    Architecture: spec.model.architecture, else the catalog (by the hf:// uri). GPU memory:
    spec.gpu.memoryGiB, else the GPU table (by spec.gpu.product). When either is unknown the
    report has `fits=None` and a reason that says what to set.
    """
    arch = _spec_arch(spec)
    memory = spec.gpu.memory_gi_b
    missing: list[str] = []
    if memory is None:
        product = spec.gpu.product
        gpu = lookup_gpu(product) if product else None
        if gpu is not None:
            memory = gpu.memory_gib
        elif product:
            missing.append(
                f"GPU memory unknown: gpu.product {product!r} is not in the planner's GPU table; set gpu.memoryGiB"
            )
        else:
            missing.append("GPU memory unknown: set gpu.product (e.g. NVIDIA-H100-80GB-HBM3) or gpu.memoryGiB")
    engine = spec.engine
    if arch is None:
        missing.insert(
            0,
            f"model architecture unknown: {spec.model.uri} is not in the built-in catalog; set "
            "model.architecture (numLayers, numAttentionHeads, numKeyValueHeads, headDim, parameters, "
            "maxPositionEmbeddings)",
        )
        return FitReport(
            weights_bytes=None,
            kv_cache_bytes_per_token=None,
            kv_cache_tokens=None,
            max_concurrent_sequences=None,
            min_tensor_parallel_size=None,
            fits=None,
            reasons=missing,
            max_model_len=engine.max_model_len,
            max_model_len_source="spec" if engine.max_model_len is not None else None,
            tensor_parallel_size=spec.gpu.count,
            gpu_memory_gib=memory,
            gpu_memory_utilization=engine.gpu_memory_utilization,
            quantization=spec_quantization(spec),
            kv_cache_dtype=str(engine.kv_cache_dtype),
            model=spec.model.uri,
            max_num_seqs=engine.max_num_seqs,
        )
    report = plan(
        arch,
        quantization=spec_quantization(spec),
        gpu_memory_gib=memory,
        gpus=spec.gpu.count,
        gpu_memory_utilization=engine.gpu_memory_utilization,
        max_model_len=engine.max_model_len,
        kv_cache_dtype=str(engine.kv_cache_dtype),
        max_num_seqs=engine.max_num_seqs,
        vllm_version=_vllm_version(engine.version, engine.image),
        gpu_product=spec.gpu.product,
    )
    if missing:
        report = replace(report, reasons=[*report.reasons, *missing])
    return report


def _vllm_version(version: str | None, image: str | None) -> str | None:
    """The release whose memory model applies; None (the pinned default) when the engine refuses the
    spec, which engines.spec_problems reports on its own."""
    try:
        return resolve_version(version, image)
    except EngineSpecError:
        return None
