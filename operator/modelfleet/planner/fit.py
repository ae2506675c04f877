"""The GPU fit planner: will this model fit these GPUs, and with how much KV cache?

    weights        = parameters x bytes per parameter (quant.py)
    KV per token   = 2 x layers x KV heads x head dim x bytes per element (whole model)
    per GPU        = vLLM's start-up profile for the vLLM version (engines/vllm/memory.py):
                     CUDA total x utilization - weights - activation peak - non-torch
                     [- CUDA graphs], in whole KV blocks
    concurrency    = KV tokens // max_model_len

The estimate for a tensor-parallel size is never above the estimate for any larger valid
size (the extra NCCL and all-reduce memory of TP > 1 must not make more GPUs look worse
than fewer: the smaller size is lowered to match, which only makes it more cautious).

Fit rules, each one a way vLLM refuses to start:
* the tensor-parallel size (= gpus) divides the attention heads, and divides or is a
  multiple of the KV heads;
* weights + runtime reserve fit inside the budget (usable > 0);
* the KV cache holds at least one sequence of max_model_len tokens, and max_model_len does
  not exceed the model's maximum context. The estimate may be up to `OPTIMISM_MARGIN` above
  what vLLM finds (tests/planner/test_calibration.py), so a sequence must fit with that
  margin to spare: the verdict errs on the side of refusing.

When max_model_len is not given: the model's maximum context when the KV cache holds one
such sequence (source "model-default", what vLLM would use by itself); otherwise the largest
length that fits with the margin, rounded down to a multiple of 256 (source "planner").
Rounding keeps the choice stable while the estimate moves by a few tokens and is a whole
number of vLLM's 16-token blocks. Below 2048 tokens the planner does not choose for you: the
report says it does not fit and a shorter explicit maxModelLen is the way to accept that. A
model whose maximum context is unknown is capped at 32768 tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from modelfleet.api import Architecture
from modelfleet.engines.vllm import memory as vllm_memory

from .arch import ModelArch, from_api, kv_cache_bytes_per_token, kv_cache_bytes_per_token_per_gpu
from .errors import PlanInputError
from .quant import (
    SPEC_SUGGESTIONS,
    QuantScheme,
    kv_bytes_per_element,
    resolve_quantization,
    weights_bytes,
)
from .report import GIB, FitReport

MAX_GPUS = 16
BLOCK_SIZE = 16
MAX_MODEL_LEN_ALIGN = 256
MIN_AUTO_MAX_MODEL_LEN = 2048
UNKNOWN_CONTEXT_CAP = 32768
# Largest share by which the planner's KV estimate may exceed vLLM's (the calibration bound).
OPTIMISM_MARGIN = 0.02
# Vocabulary assumed when the source gives none (a bare spec.model.architecture): the sampler's
# share of vLLM's profile grows with it, so the largest common one (Gemma 3's 262,144; Llama 4
# and gpt-oss use ~201K, Qwen 152K, Llama 3 128K) keeps the estimate from being optimistic.
ASSUMED_VOCAB = 262144


def tensor_parallel_problem(arch: ModelArch, tp: int) -> str | None:
    """Why vLLM refuses this tensor-parallel size for the model, or None when it accepts it."""
    if _tp_accepted(arch, tp):
        return None
    heads, kv = arch.num_attention_heads, arch.num_key_value_heads
    if heads % tp:
        return (
            f"tensor-parallel size {tp} (gpu.count) does not divide the model's {heads} attention heads; "
            f"vLLM refuses it (valid sizes: {', '.join(map(str, valid_tensor_parallel_sizes(arch)))})"
        )
    return (
        f"tensor-parallel size {tp} (gpu.count) neither divides nor is a multiple of the model's "
        f"{kv} KV heads; vLLM refuses it"
    )


def valid_tensor_parallel_sizes(arch: ModelArch, limit: int = MAX_GPUS) -> list[int]:
    """Tensor-parallel sizes up to `limit` that vLLM accepts for the model."""
    return [tp for tp in range(1, limit + 1) if _tp_accepted(arch, tp)]


def _tp_accepted(arch: ModelArch, tp: int) -> bool:
    """True when vLLM accepts tensor-parallel size `tp` for the model."""
    heads, kv = arch.num_attention_heads, arch.num_key_value_heads
    return heads % tp == 0 and (kv % tp == 0 or tp % kv == 0)


@dataclass(frozen=True)
class _Inputs:
    arch: ModelArch
    scheme: QuantScheme
    weights: int
    kv_bpe: int
    gpu_memory_gib: float
    utilization: float
    max_num_seqs: int | None
    max_num_batched_tokens: int | None
    version: vllm_memory.Version
    gpu_product: str | None
    max_model_len: int | None


@dataclass(frozen=True)
class _Capacity:
    reserve: int
    usable: int
    kv_tokens: int
    memory: vllm_memory.MemoryEstimate


@dataclass(frozen=True)
class _Decision:
    fits: bool
    max_model_len: int
    source: str
    reasons: tuple[str, ...]
    largest_len: int  # largest max_model_len that fits (multiple of 256), 0 when none


def _shape(arch: ModelArch) -> vllm_memory.ModelShape:
    return vllm_memory.ModelShape(
        num_layers=arch.num_layers,
        hidden_size=arch.effective_hidden_size,
        intermediate_size=arch.effective_intermediate_size,
        vocab_size=arch.vocab_size or ASSUMED_VOCAB,
    )


@lru_cache(maxsize=4096)
def _estimate(inp: _Inputs, tp: int) -> vllm_memory.MemoryEstimate:
    """vLLM's start-up memory on one of `tp` GPUs (cached: the TP search asks for each size often)."""
    return vllm_memory.estimate(
        version=inp.version,
        shape=_shape(inp.arch),
        tp=tp,
        gpu_memory_gib=inp.gpu_memory_gib,
        gpu_product=inp.gpu_product,
        utilization=inp.utilization,
        weights_per_gpu=-(-inp.weights // tp),
        kv_bytes_per_token_per_gpu=kv_cache_bytes_per_token_per_gpu(inp.arch, inp.kv_bpe, tp),
        max_model_len=inp.max_model_len,
        max_num_seqs=inp.max_num_seqs,
        max_num_batched_tokens=inp.max_num_batched_tokens,
    )


def _capacity(inp: _Inputs, tp: int) -> _Capacity:
    own = _estimate(inp, tp)
    # Never above a larger valid TP size's figure (see the module docstring).
    larger = [_estimate(inp, t) for t in valid_tensor_parallel_sizes(inp.arch, max(MAX_GPUS, tp)) if t > tp]
    kv_tokens = min([own.kv_tokens, *(e.kv_tokens for e in larger)])
    available = min([own.available_kv, *(e.available_kv for e in larger)])
    return _Capacity(reserve=tp * own.reserve, usable=tp * available, kv_tokens=kv_tokens, memory=own)


def _decide(inp: _Inputs, tp: int, cap: _Capacity, max_model_len: int | None) -> _Decision:
    reasons: list[str] = []
    tp_problem = tensor_parallel_problem(inp.arch, tp)
    if tp_problem:
        reasons.append(tp_problem)
    if cap.usable <= 0:
        budget = tp * cap.memory.requested / GIB
        cuda = cap.memory.cuda_total / GIB
        reasons.append(
            f"weights ({inp.weights / GIB:.1f} GiB) + runtime reserve ({cap.reserve / GIB:.1f} GiB) exceed the "
            f"vLLM budget of {tp} x {cuda:.2f} GiB (CUDA-visible) x {inp.utilization:g} = {budget:.1f} GiB"
        )
    safe = _safe_tokens(cap.kv_tokens)
    largest = safe // MAX_MODEL_LEN_ALIGN * MAX_MODEL_LEN_ALIGN
    max_pos = inp.arch.max_position_embeddings
    if max_model_len is not None:
        if max_pos is not None and max_model_len > max_pos:
            reasons.append(
                f"maxModelLen {max_model_len} exceeds the model's maximum context of {max_pos} tokens; vLLM refuses it"
            )
        if cap.usable > 0 and safe < max_model_len:
            reasons.append(
                f"KV cache room for {cap.kv_tokens} tokens (with the planner's {OPTIMISM_MARGIN:.0%} margin: "
                f"{safe}) is less than one sequence of maxModelLen {max_model_len}; vLLM would refuse to start "
                f"(largest that fits: {largest})"
            )
        return _Decision(not reasons, max_model_len, "spec", tuple(reasons), largest)
    cap_len = max_pos or UNKNOWN_CONTEXT_CAP
    if safe >= cap_len:
        return _Decision(not reasons, cap_len, "model-default" if max_pos else "planner", tuple(reasons), largest)
    floor = min(MIN_AUTO_MAX_MODEL_LEN, cap_len)
    if largest >= floor:
        return _Decision(not reasons, largest, "planner", tuple(reasons), largest)
    if cap.usable > 0:
        reasons.append(
            f"KV cache room for only {cap.kv_tokens} tokens, under the {floor}-token minimum the planner "
            "chooses by itself; set engine.maxModelLen to accept a shorter context, or add GPUs"
        )
    return _Decision(False, cap_len, "model-default" if max_pos else "planner", tuple(reasons), largest)


def _safe_tokens(kv_tokens: int) -> int:
    """KV tokens vLLM finds at least, given the estimate may be OPTIMISM_MARGIN too high."""
    return math.floor(kv_tokens / (1 + OPTIMISM_MARGIN))


def _evaluate(inp: _Inputs, tp: int, max_model_len: int | None) -> tuple[_Capacity, _Decision]:
    cap = _capacity(inp, tp)
    return cap, _decide(inp, tp, cap, max_model_len)


def _check_inputs(
    gpus: int, gpu_memory_gib: float | None, utilization: float, max_model_len: int | None, max_num_seqs: int | None
) -> None:
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise PlanInputError(f"GPU count must be a whole number >= 1, got {gpus!r}")
    if gpu_memory_gib is not None and not (math.isfinite(gpu_memory_gib) and gpu_memory_gib > 0):
        raise PlanInputError(f"GPU memory must be a positive number of GiB, got {gpu_memory_gib!r}")
    if not (math.isfinite(utilization) and 0 < utilization <= 1):
        raise PlanInputError(f"GPU memory utilization must be in (0, 1], got {utilization!r}")
    if max_model_len is not None and (isinstance(max_model_len, bool) or max_model_len < 1):
        raise PlanInputError(f"max model len must be >= 1, got {max_model_len!r}")
    if max_num_seqs is not None and max_num_seqs < 1:
        raise PlanInputError(f"max num seqs must be >= 1, got {max_num_seqs!r}")


def plan(
    arch: ModelArch | Architecture,
    quantization: str = "none",
    gpu_memory_gib: float | None = None,
    gpus: int = 1,
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    kv_cache_dtype: str = "auto",
    max_num_seqs: int | None = None,
    *,
    max_num_batched_tokens: int | None = None,
    quantization_candidates: tuple[str, ...] = SPEC_SUGGESTIONS,
    vllm_version: str | None = None,
    gpu_product: str | None = None,
) -> FitReport:
    """Plan one replica of `gpus` GPUs (tensor parallel) with `gpu_memory_gib` each.

    `gpu_memory_gib` is the nvidia-smi total of one GPU; `max_num_seqs` and
    `max_num_batched_tokens` default to what `vllm_version` (default: the release the operator
    renders) picks for the GPU (`gpu_product`, e.g. NVIDIA-A100-SXM4-80GB, matters to it).
    With `gpu_memory_gib` None the report has the weights, the KV bytes per token and the
    tensor-parallel check, and `fits` is None unless the TP size alone rules it out.
    Raises `PlanInputError` for bad numbers or an unknown quantization / KV dtype.
    """
    if isinstance(arch, Architecture):
        arch = from_api(arch)
    try:
        version = vllm_memory.parse_version(vllm_version)
    except ValueError as exc:
        raise PlanInputError(str(exc)) from None
    _check_inputs(gpus, gpu_memory_gib, gpu_memory_utilization, max_model_len, max_num_seqs)
    scheme = resolve_quantization(quantization)
    kv_bpe = kv_bytes_per_element(kv_cache_dtype)
    weights = weights_bytes(arch, scheme)
    common = {
        "weights_bytes": weights,
        "kv_cache_bytes_per_token": kv_cache_bytes_per_token(arch, kv_bpe),
        "tensor_parallel_size": gpus,
        "gpu_memory_utilization": gpu_memory_utilization,
        "quantization": scheme.name,
        "kv_cache_dtype": kv_cache_dtype,
        "model": arch.name,
        "max_num_seqs": max_num_seqs,
        "vllm_version": str(version),
    }
    if gpu_memory_gib is None:
        problem = tensor_parallel_problem(arch, gpus)
        return FitReport(
            kv_cache_tokens=None,
            max_concurrent_sequences=None,
            min_tensor_parallel_size=None,
            fits=False if problem else None,
            reasons=[problem] if problem else [],
            max_model_len=max_model_len,
            max_model_len_source="spec" if max_model_len is not None else None,
            **common,  # type: ignore[arg-type]
        )
    if max_num_batched_tokens is not None and max_num_batched_tokens < 1:
        raise PlanInputError(f"max num batched tokens must be >= 1, got {max_num_batched_tokens!r}")
    inp = _Inputs(
        arch=arch,
        scheme=scheme,
        weights=weights,
        kv_bpe=kv_bpe,
        gpu_memory_gib=gpu_memory_gib,
        utilization=gpu_memory_utilization,
        max_num_seqs=max_num_seqs,
        max_num_batched_tokens=max_num_batched_tokens,
        version=version,
        gpu_product=gpu_product,
        max_model_len=max_model_len,
    )
    cap, decision = _evaluate(inp, gpus, max_model_len)
    limit = max(MAX_GPUS, gpus)
    min_tp = next(
        (tp for tp in valid_tensor_parallel_sizes(arch, limit) if _evaluate(inp, tp, max_model_len)[1].fits), None
    )
    suggestion = None
    if not decision.fits:
        suggestion = _suggest(inp, gpus, max_model_len, min_tp, decision, quantization_candidates)
    return FitReport(
        kv_cache_tokens=cap.kv_tokens,
        max_concurrent_sequences=cap.kv_tokens // decision.max_model_len,
        min_tensor_parallel_size=min_tp,
        fits=decision.fits,
        reasons=list(decision.reasons),
        max_model_len=decision.max_model_len,
        max_model_len_source=decision.source,
        suggestion=suggestion,
        runtime_reserve_bytes=cap.reserve,
        usable_bytes=cap.usable,
        gpu_memory_gib=gpu_memory_gib,
        memory=cap.memory,
        **{**common, "max_num_seqs": cap.memory.max_num_seqs},  # type: ignore[arg-type]
    )


def _suggest(
    inp: _Inputs,
    gpus: int,
    max_model_len: int | None,
    min_tp: int | None,
    decision: _Decision,
    candidates: tuple[str, ...],
) -> str | None:
    """The smallest gpu.count that fits, else the lightest quantization, else a KV change."""
    if min_tp is not None and min_tp != gpus:
        return f"set gpu.count: {min_tp}"
    if tensor_parallel_problem(inp.arch, gpus):
        return None
    for name in candidates:
        scheme = resolve_quantization(name)
        if scheme.bits_per_weight >= inp.scheme.bits_per_weight:
            continue
        alt = replace(inp, scheme=scheme, weights=weights_bytes(inp.arch, scheme))
        if _evaluate(alt, gpus, max_model_len)[1].fits:
            return f"use quantization: {name}"
    if inp.kv_bpe > 1:
        alt = replace(inp, kv_bpe=1)
        if _evaluate(alt, gpus, max_model_len)[1].fits:
            return "set engine.kvCacheDtype: fp8"
    if max_model_len is not None and decision.largest_len >= BLOCK_SIZE:
        return f"set engine.maxModelLen: {decision.largest_len}"
    return None


# plan_spec lived here before planner/spec.py; callers of the old path keep working.
from .spec import plan_spec  # noqa: E402

__all__ = ["plan", "plan_spec", "tensor_parallel_problem", "valid_tensor_parallel_sizes"]
