"""vLLM's GPU memory model: what one vLLM worker's start-up profiling leaves for the KV cache.

vLLM sizes its KV cache once, at start-up, per GPU (vllm/v1/worker/gpu_worker.py
`determine_available_memory`, vllm/utils/mem_utils.py `memory_profiling`):

    requested  = CUDA total memory x --gpu-memory-utilization
                 ("Desired GPU memory utilization is (0.9, 71.26 GiB)")
    available  = requested - weights - torch peak increase - non-torch increase
                 [- estimated CUDA graph memory, since v0.21]
                 ("Available KV cache memory: X GiB")
    KV tokens  = available // (block_size x KV bytes per token) x block_size
                 ("GPU KV cache size: N tokens")

and refuses to start when `available` is not positive ("No available memory for the cache
blocks") or holds less than one sequence of max_model_len ("... is larger than the maximum
number of tokens that can be stored in KV cache"). `estimate` follows each term; every
constant below names the vLLM source or the published log it comes from. The model is
keyed by a version string because the terms moved between releases (see `Era`).

Terms, per GPU:

* CUDA total (`cuda_total_gib`): torch.cuda.mem_get_info() total, below the nvidia-smi total
  the GPU table holds by what the driver keeps. Published totals: H100 80GB 79.18 GiB vs
  79.65 in nvidia-smi (llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md
  "H100 GPUs (79.18 GiB total memory)"); A100 80GB 79.25 GiB vs 80.00 ("Free memory on device
  (78.84/79.25 GiB)"); A100 40GB 39.39 vs 40.00 ("Free memory on device (3.71/39.39 GiB)");
  RTX 3090 23.58 vs 24.00 (vLLM issue 10517 "total_gpu_memory=23.58GiB"). Other boards:
  0.75 GiB, the largest of these gaps.
* weights ("Model loading took X GiB"): computed by the planner (planner/quant.py), per GPU.
* activation peak ("torch peak memory increase", "peak activation"): the profiling run
  (gpu_model_runner.py `profile_run`) is one forward pass over `max_num_batched_tokens`
  dummy tokens followed by `_dummy_sampler_run` on min(max_num_seqs, max_num_batched_tokens)
  rows of full-vocabulary logits (gathered across TP ranks, so not divided by TP):
  - forward: per token, 4 hidden-sized bf16 buffers plus the MLP's gate/up output
    (2 x intermediate / TP) and activation output (intermediate / TP): (4h + 3i/TP) x 2 bytes.
    Check: vLLM issue 10517, Llama-3.1-8B, 20,000 tokens: 2.21 GiB by this formula, vLLM
    logged peak_torch_memory 17.06 - weights 14.99 = 2.07 GiB.
  - sampler: the PyTorch-native top-k/top-p path (v1/sample/ops/topk_topp_sampler.py:
    fp32 logits, a sorted copy, int64 sort indices, softmax, masks, the scattered result,
    probabilities and the exponential noise) holds about 38.4 bytes per logit. Measured in
    the five llm-d profiles on H100 (8192 tokens, 1024 rows): (peak - retained hidden states)
    / (rows x vocab) = 38.4 (Llama-3.1-8B 4.76 GiB), 38.3 (Qwen3-0.6B 5.56), 38.4 (Qwen3-32B
    5.64), 38.5 (Llama-3.3-70B-FP8 TP2 4.84), 38.3 (gpt-oss-20b 7.38). The planner uses 39.
    FlashInfer's sampler (used by v0.10 when installed) needs less: the planner assumes the
    heavier path on purpose.
  - v0.8-v0.20 peak = max(forward, sampler + retained hidden states): the forward pass's
    buffers are freed before the sampler runs (Qwen3-0.6B and Qwen3-32B peak within 0.1 GiB
    of each other on H100 although their forward passes differ by 1.4 GiB).
  - v0.21+ (model runner v2): forward + sampler (an A100 log, Llama-3.1-8B, 2048 tokens x
    256 rows: "1.44 GiB for peak activation" = 1.21 sampler + 0.23 forward).
  - vLLM < 0.8 (V0 engine): forward only, over max(max_model_len, 2048) tokens, or 512 when
    chunked prefill is on (max_model_len > 32K); its sampler run is small (issue 10517 at
    35K context: 0.06 GiB peak): max(forward, fp32 logits + probabilities at 8 bytes/logit).
* non-torch ("non-torch forward increase", "non-torch memory"): cuBLAS/cuDNN workspaces and,
  under TP, NCCL and custom all-reduce buffers (created after vLLM's baseline snapshot, so
  counted). llm-d H100: 0.13-0.14 GiB at TP 1, 0.55 GiB at TP 2. NCCL's share depends on the
  topology (channels per NVLink peer, NVLink SHARP buffers on NVSwitch systems): LMCache's H100
  profiles (docs FAQ, "KV Cache Sizes for Popular Models": Qwen3-32B TP 2 33.66 GiB, Llama-3.1-70B
  TP 4 32.06 GiB available) leave about 0.8 GiB less than the llm-d TP 2 one would predict. The
  planner uses 0.15 GiB at TP 1 and 1.5 GiB at TP > 1. V0 before v0.6.5 measured non-torch
  after the profile (issue 10517: 0.35 GiB); v0.6.5-v0.7 (vLLM PR 10511) counts the CUDA context
  and NCCL from a pre-instance baseline (PR 10511: 1.79 GiB at TP 1, 3.58 at TP 2 on H100): the
  planner uses 0.4 GiB below v0.6.5, 1.0 / 2.0 GiB (TP 1 / TP > 1) from v0.6.5 to v0.7.
* CUDA graphs ("Estimated CUDA graph memory: X GiB total", "Graph capturing finished in N
  secs, took X GiB"): since v0.21 the estimate is subtracted inside the budget
  ("CUDA graph memory profiling is enabled (default since v0.21.0)"); before, graphs are
  captured after the KV cache, out of the (1 - utilization) headroom. Published figures:
  0.50 GiB (Qwen2-7B, 28 layers, TP 1), 0.65 (TP 2), 1.00 (TP 2 across nodes) on v0.10.1.1;
  0.13-0.65 GiB for small models on v0.21+. The planner allows 0.25 GiB + 8 MiB per layer
  + 0.25 GiB when TP > 1.
* KV pool rounding: whole blocks of `block_size` tokens (16 on CUDA;
  v1/core/kv_cache_utils.py: num_blocks = available // page_size // num_layers).

Defaults of the profiling run (vllm/engine/arg_utils.py `get_batch_defaults` and
`_set_default_max_num_seqs_and_batched_tokens_args`, `vllm serve` = OPENAI_API_SERVER usage):
GPUs with >= 70 GiB: max_num_batched_tokens 8192, max_num_seqs 1024; others 2048 / 256;
since v0.9 (vLLM PR 17885) A100s get the small defaults whatever their memory. vLLM caps
max_num_batched_tokens at max_num_seqs x max_model_len and max_num_seqs at
max_num_batched_tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2
BLOCK_SIZE = 16

# The vLLM release the operator renders by default (the engine seam's pin).
DEFAULT_VERSION = "0.32.0"

# nvidia-smi total (GiB, 2 decimals, as planner/gpus.py holds it) -> GiB CUDA never hands out.
_DRIVER_RESERVED_GIB: dict[float, float] = {
    79.65: 0.47,  # H100 80GB: 79.65 -> 79.18
    80.0: 0.75,  # A100 80GB: 80.00 -> 79.25
    40.0: 0.61,  # A100 40GB: 40.00 -> 39.39
    24.0: 0.42,  # RTX 3090: 24.00 -> 23.58
}
DEFAULT_DRIVER_RESERVED_GIB = 0.75

SAMPLER_BYTES_PER_LOGIT = 39  # PyTorch-native top-k/top-p sampler, measured 38.3-38.6
V0_SAMPLER_BYTES_PER_LOGIT = 8  # V0: fp32 logits + probabilities
ACTIVATION_BYTES = 2  # bf16/fp16 activations whatever the weight quantization
LARGE_GPU_GIB = 70.0


@dataclass(frozen=True, order=True)
class Version:
    """A vLLM release number (major, minor, patch); extra parts (0.10.1.1) are ignored."""

    major: int
    minor: int
    patch: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


_VERSION_RE = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str | None) -> Version:
    """`0.32.0`, `v0.10.1.1` or an image reference ending in such a tag; the default when None.

    Raises ValueError for text without a version number.
    """
    if text is None:
        text = DEFAULT_VERSION
    tag = text.rsplit(":", 1)[-1] if "/" in text or ":" in text else text
    match = _VERSION_RE.match(tag.strip())
    if not match:
        raise ValueError(f"not a vLLM version: {text!r} (expected e.g. 0.32.0 or v0.10.1.1)")
    return Version(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


@dataclass(frozen=True)
class Era:
    """How one range of vLLM releases profiles memory."""

    v1_engine: bool  # V1 engine (default since v0.8.0)
    cuda_graphs_in_budget: bool  # CUDA graph estimate subtracted (default since v0.21.0)
    a100_small_batch: bool  # A100 gets the small batch defaults (PR 17885, v0.9.0)
    activation_adds_sampler: bool  # forward + sampler instead of max of the two (v0.21+)
    non_torch_tp1_gib: float
    non_torch_tp_gib: float  # TP > 1


def era(version: Version) -> Era:
    """The profiling behaviour of a vLLM version."""
    if version < Version(0, 8):
        baseline = version >= Version(0, 6, 5)  # PR 10511: non-torch from a pre-instance baseline
        return Era(False, False, False, False, 1.0 if baseline else 0.4, 2.0 if baseline else 0.6)
    return Era(
        v1_engine=True,
        cuda_graphs_in_budget=version >= Version(0, 21),
        a100_small_batch=version >= Version(0, 9),
        activation_adds_sampler=version >= Version(0, 21),
        non_torch_tp1_gib=0.15,
        non_torch_tp_gib=1.5,
    )


def cuda_total_gib(gpu_memory_gib: float) -> float:
    """GiB CUDA reports for a GPU whose nvidia-smi total is `gpu_memory_gib` (see module docstring)."""
    reserved = _DRIVER_RESERVED_GIB.get(round(gpu_memory_gib, 2), DEFAULT_DRIVER_RESERVED_GIB)
    return max(gpu_memory_gib - reserved, 0.0)


@dataclass(frozen=True)
class BatchDefaults:
    """The profiling run's size: tokens in the forward pass and rows through the sampler."""

    max_num_batched_tokens: int
    max_num_seqs: int


def batch_defaults(
    version: Version,
    gpu_memory_gib: float,
    gpu_product: str | None,
    max_model_len: int | None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
) -> BatchDefaults:
    """vLLM's max_num_batched_tokens / max_num_seqs for `vllm serve` when the user sets none.

    An unknown product on a >= 70 GiB GPU gets the large defaults: the bigger profile.
    """
    spec = era(version)
    if not spec.v1_engine:
        chunked = max_model_len is None or max_model_len > 32768
        v0_tokens = max_num_batched_tokens or (512 if chunked else max(max_model_len or 0, 2048))
        return BatchDefaults(v0_tokens, max_num_seqs or 256)
    is_a100 = gpu_product is not None and "a100" in gpu_product.lower()
    large = cuda_total_gib(gpu_memory_gib) >= LARGE_GPU_GIB and not (spec.a100_small_batch and is_a100)
    if max_num_batched_tokens is not None:
        tokens = max_num_batched_tokens
    else:
        tokens = 8192 if large else 2048
        if max_model_len is not None:
            tokens = min(tokens, (max_num_seqs or (1024 if large else 256)) * max_model_len)
    seqs = max_num_seqs or min(1024 if large else 256, tokens)
    return BatchDefaults(tokens, seqs)


@dataclass(frozen=True)
class ModelShape:
    """What the memory model needs of a model, whole-model figures (TP splits them)."""

    num_layers: int
    hidden_size: int
    intermediate_size: int  # active MLP width per token (top_k x expert width for MoE)
    vocab_size: int


@dataclass(frozen=True)
class MemoryEstimate:
    """One GPU's memory as vLLM's start-up log reports it, in bytes."""

    version: str
    cuda_total: int
    requested: int  # CUDA total x utilization
    weights: int
    activation_peak: int  # "torch peak memory increase"
    non_torch: int  # "non-torch forward increase"
    cuda_graphs: int
    cuda_graphs_in_budget: bool  # subtracted from `requested` (v0.21+) or captured afterwards
    available_kv: int  # "Available KV cache memory" (may be negative: vLLM refuses)
    kv_tokens: int  # "GPU KV cache size"
    block_size: int
    max_num_batched_tokens: int
    max_num_seqs: int

    @property
    def reserve(self) -> int:
        """Everything in the budget that is neither weights nor KV cache."""
        return self.activation_peak + self.non_torch + (self.cuda_graphs if self.cuda_graphs_in_budget else 0)


def activation_peak_bytes(version: Version, shape: ModelShape, tp: int, batch: BatchDefaults) -> int:
    """The profiling run's torch peak increase on one GPU (see the module docstring)."""
    per_token = 4 * shape.hidden_size + (3 * shape.intermediate_size) // tp
    forward = batch.max_num_batched_tokens * per_token * ACTIVATION_BYTES
    spec = era(version)
    if not spec.v1_engine:
        return max(forward, batch.max_num_seqs * shape.vocab_size * V0_SAMPLER_BYTES_PER_LOGIT)
    rows = min(batch.max_num_seqs, batch.max_num_batched_tokens)
    retained = batch.max_num_batched_tokens * shape.hidden_size * ACTIVATION_BYTES
    sampler = rows * shape.vocab_size * SAMPLER_BYTES_PER_LOGIT + retained
    return forward + sampler if spec.activation_adds_sampler else max(forward, sampler)


def cuda_graph_bytes(shape: ModelShape, tp: int) -> int:
    """The planner's allowance for captured CUDA graphs on one GPU."""
    gib = 0.25 + (0.25 if tp > 1 else 0.0)
    return int(gib * GIB) + shape.num_layers * 8 * MIB


def non_torch_bytes(version: Version, tp: int) -> int:
    """Non-torch memory on one GPU: workspaces, and NCCL / custom all-reduce buffers under TP."""
    spec = era(version)
    return int((spec.non_torch_tp_gib if tp > 1 else spec.non_torch_tp1_gib) * GIB)


def estimate(
    *,
    version: str | Version | None,
    shape: ModelShape,
    tp: int,
    gpu_memory_gib: float,
    gpu_product: str | None,
    utilization: float,
    weights_per_gpu: int,
    kv_bytes_per_token_per_gpu: int,
    max_model_len: int | None,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    block_size: int = BLOCK_SIZE,
) -> MemoryEstimate:
    """One GPU's start-up memory for a vLLM version, as vLLM's own profiling would log it."""
    ver = version if isinstance(version, Version) else parse_version(version)
    spec = era(ver)
    batch = batch_defaults(ver, gpu_memory_gib, gpu_product, max_model_len, max_num_seqs, max_num_batched_tokens)
    total = int(cuda_total_gib(gpu_memory_gib) * GIB)
    requested = int(total * utilization)
    activation = activation_peak_bytes(ver, shape, tp, batch)
    non_torch = non_torch_bytes(ver, tp)
    graphs = cuda_graph_bytes(shape, tp)
    available = requested - weights_per_gpu - activation - non_torch - (graphs if spec.cuda_graphs_in_budget else 0)
    page = kv_bytes_per_token_per_gpu * block_size
    tokens = available // page * block_size if available > 0 and page > 0 else 0
    return MemoryEstimate(
        version=str(ver),
        cuda_total=total,
        requested=requested,
        weights=weights_per_gpu,
        activation_peak=activation,
        non_torch=non_torch,
        cuda_graphs=graphs,
        cuda_graphs_in_budget=spec.cuda_graphs_in_budget,
        available_kv=available,
        kv_tokens=tokens,
        block_size=block_size,
        max_num_batched_tokens=batch.max_num_batched_tokens,
        max_num_seqs=batch.max_num_seqs,
    )
