"""The runtime reserve: GPU memory inside the vLLM budget that is neither weights nor KV cache.

vLLM sizes its KV cache at start-up: it loads the weights, runs one profiling forward pass
with the largest batch it is configured for, and gives what is left of
`total x --gpu-memory-utilization` to the KV cache (vLLM's memory profiler reports
"weights memory", "torch peak memory increase", "non-torch forward increase" and, since
v0.21, "Estimated CUDA graph memory"; vllm.utils.mem_utils.MemoryProfilingResult). When
nothing is left it refuses to start ("No available memory for the cache blocks"). The planner
subtracts, per GPU:

1. driver-reserved memory: CUDA's total is below the NVML/nvidia-smi total that the GPU
   table and `gpu.memoryGiB` give (RTX 3090: 24.00 GiB in nvidia-smi, vLLM logs
   `total_gpu_memory=23.58GiB`, vLLM issue 10517; H100 80GB: 79.65 vs 79.19 GiB), and vLLM
   multiplies the *CUDA* total by the utilization: 0.45 GiB x utilization.
2. non-torch memory (CUDA context, cuBLAS workspaces, NCCL and custom all-reduce buffers):
   vLLM logs 0.35 GiB (issue 10517, one GPU), 0.39 GiB (issue 11251), 0.25 GiB (issue 13061,
   TP 2): 0.4 GiB.
3. CUDA graphs: vLLM >= 0.21 profiles them inside the budget (gpustack/runner PR 251 log:
   "Estimated CUDA graph memory: 0.36 GiB total"); older releases, the pinned v0.11
   included, capture them after the KV cache out of the (1 - utilization) headroom, where
   they have run GPUs out of memory at high utilization (vLLM issue 11251). 0.5 GiB,
   counted inside the budget to be safe either way.
4. the activation peak of the profiling pass: `max_num_batched_tokens` tokens through one
   layer (4 hidden-sized bf16 buffers plus gate, up and activation outputs of the MLP,
   the MLP sharded by TP) plus the sampler's fp32 logits and probabilities for
   `max_num_seqs` sequences. `vllm serve` defaults `--max-num-batched-tokens` to 8192 on
   GPUs with >= 70 GiB and 2048 below (vllm/engine/arg_utils.py `get_batch_defaults`; it
   also uses 2048 on A100-80GB, where the planner's 8192 is conservative).
   Check: Llama-3.1-8B, 20000 tokens profiled (vLLM v0 without chunked prefill) -> this
   formula gives 2.21 + 0.24 GiB; vLLM logged a 2.07 GiB torch peak increase (issue 10517).

Everything is per GPU and never increases with the tensor-parallel size, so more GPUs never
leave less room (a property the tests check).
"""

from __future__ import annotations

from .arch import ModelArch

GIB = 1024**3
DRIVER_RESERVED_GIB = 0.45
NON_TORCH_GIB = 0.4
CUDA_GRAPHS_GIB = 0.5
ACTIVATION_BYTES = 2  # bf16/fp16 activations whatever the weight quantization
LOGIT_BYTES = 4 * 2  # fp32 logits + fp32 probabilities in the sampler
ASSUMED_VOCAB = 128256  # Llama 3's vocabulary, when the source does not give one
LARGE_GPU_GIB = 70.0


def default_max_num_batched_tokens(gpu_memory_gib: float) -> int:
    """vLLM's `vllm serve` default for --max-num-batched-tokens on a GPU of this size."""
    return 8192 if gpu_memory_gib >= LARGE_GPU_GIB else 2048


def activation_peak_bytes(arch: ModelArch, tp: int, max_num_seqs: int, max_num_batched_tokens: int) -> int:
    """Peak activation memory of the profiling pass on one GPU (see the module docstring)."""
    hidden = arch.effective_hidden_size
    intermediate = arch.effective_intermediate_size
    per_token = 4 * hidden + (3 * intermediate) // tp
    forward = max_num_batched_tokens * per_token * ACTIVATION_BYTES
    sampler = max_num_seqs * (arch.vocab_size or ASSUMED_VOCAB) * LOGIT_BYTES
    return forward + sampler


def fixed_reserve_bytes(gpu_memory_utilization: float) -> int:
    """Driver-reserved, non-torch and CUDA-graph memory on one GPU."""
    gib = DRIVER_RESERVED_GIB * gpu_memory_utilization + NON_TORCH_GIB + CUDA_GRAPHS_GIB
    return int(gib * GIB)


def runtime_reserve_per_gpu(
    arch: ModelArch, tp: int, gpu_memory_utilization: float, max_num_seqs: int, max_num_batched_tokens: int
) -> int:
    """All of the runtime reserve on one GPU, in bytes."""
    return fixed_reserve_bytes(gpu_memory_utilization) + activation_peak_bytes(
        arch, tp, max_num_seqs, max_num_batched_tokens
    )
