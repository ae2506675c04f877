"""`FitReport`: what the planner found, as a value, as JSON and as a short table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelfleet.engines.vllm.memory import MemoryEstimate

GIB = 1024**3

# Keys other tools read (the issue fixes them); to_json adds more after these.
JSON_KEYS = (
    "weights_bytes",
    "kv_cache_bytes_per_token",
    "kv_cache_tokens",
    "max_concurrent_sequences",
    "min_tensor_parallel_size",
    "fits",
    "reasons",
)


@dataclass(frozen=True)
class FitReport:
    """The fit check for one replica.

    Numbers are None only when an input they need is unknown (no architecture, or no GPU
    memory); `fits` is None then too, and `reasons` says what to set.
    """

    weights_bytes: int | None
    kv_cache_bytes_per_token: int | None
    kv_cache_tokens: int | None
    max_concurrent_sequences: int | None
    min_tensor_parallel_size: int | None
    fits: bool | None
    reasons: list[str] = field(default_factory=list)
    max_model_len: int | None = None
    max_model_len_source: str | None = None  # "spec" | "planner" | "model-default"
    suggestion: str | None = None
    runtime_reserve_bytes: int | None = None
    usable_bytes: int | None = None
    tensor_parallel_size: int = 1
    gpu_memory_gib: float | None = None
    gpu_memory_utilization: float = 0.9
    quantization: str = "none"
    kv_cache_dtype: str = "auto"
    model: str = ""
    max_num_seqs: int | None = None
    vllm_version: str | None = None
    # One GPU's start-up memory as vLLM would log it (None when GPU memory is unknown).
    memory: MemoryEstimate | None = None

    @property
    def weights_gib(self) -> float | None:
        """Weights in GiB, rounded to 0.01."""
        return None if self.weights_bytes is None else round(self.weights_bytes / GIB, 2)

    @property
    def effective_concurrency(self) -> int | None:
        """Sequences that can run at once: KV room at max_model_len, capped by max_num_seqs."""
        if self.max_concurrent_sequences is None:
            return None
        if self.max_num_seqs is None:
            return self.max_concurrent_sequences
        return min(self.max_concurrent_sequences, self.max_num_seqs)

    def to_json(self) -> dict[str, Any]:
        """The issue's JSON keys first, then the extras (all JSON-serializable)."""
        return {
            "weights_bytes": self.weights_bytes,
            "kv_cache_bytes_per_token": self.kv_cache_bytes_per_token,
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrent_sequences": self.max_concurrent_sequences,
            "min_tensor_parallel_size": self.min_tensor_parallel_size,
            "fits": self.fits,
            "reasons": list(self.reasons),
            "max_model_len": self.max_model_len,
            "max_model_len_source": self.max_model_len_source,
            "suggestion": self.suggestion,
            "runtime_reserve_bytes": self.runtime_reserve_bytes,
            "usable_bytes": self.usable_bytes,
            "weights_gib": self.weights_gib,
            "tensor_parallel_size": self.tensor_parallel_size,
            "gpu_memory_gib": self.gpu_memory_gib,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "quantization": self.quantization,
            "kv_cache_dtype": self.kv_cache_dtype,
            "model": self.model,
            "vllm_version": self.vllm_version,
            "per_gpu": None if self.memory is None else memory_json(self.memory),
        }


def memory_json(est: MemoryEstimate) -> dict[str, Any]:
    """One GPU's breakdown in GiB (2 decimals, as vLLM logs them) plus the KV tokens."""

    def gib(value: int) -> float:
        return round(value / GIB, 2)

    return {
        "vllm_version": est.version,
        "cuda_total_gib": gib(est.cuda_total),
        "requested_gib": gib(est.requested),
        "weights_gib": gib(est.weights),
        "activation_peak_gib": gib(est.activation_peak),
        "non_torch_gib": gib(est.non_torch),
        "cuda_graphs_gib": gib(est.cuda_graphs),
        "cuda_graphs_in_budget": est.cuda_graphs_in_budget,
        "available_kv_cache_gib": gib(est.available_kv),
        "kv_cache_tokens": est.kv_tokens,
        "block_size": est.block_size,
        "max_num_batched_tokens": est.max_num_batched_tokens,
        "max_num_seqs": est.max_num_seqs,
    }


def format_explain(name: str, r: FitReport) -> str:
    """The per-GPU breakdown in the words of vLLM's start-up log, to hold against a real one."""
    est = r.memory
    if est is None:
        return f"{name}: no breakdown (GPU memory or model architecture unknown)\n"

    def gib(value: int) -> str:
        return f"{value / GIB:.2f} GiB"

    graphs = (
        f"Estimated CUDA graph memory: {gib(est.cuda_graphs)} total   (subtracted from the budget, vLLM >= 0.21)"
        if est.cuda_graphs_in_budget
        else f"Graph capturing ... took {gib(est.cuda_graphs)}   (after the KV cache, from the "
        "(1 - utilization) headroom: not in the budget)"
    )
    lines = [
        f"{name}: per GPU (tensor-parallel size {r.tensor_parallel_size}), as vLLM {est.version} would log it",
        f"  total GPU memory (CUDA)                {gib(est.cuda_total)}",
        f"  Desired GPU memory utilization is ({r.gpu_memory_utilization:g}, {gib(est.requested)})",
        f"  Model loading took                     {gib(est.weights)}",
        f"  torch peak memory increase             {gib(est.activation_peak)}   (profile: "
        f"{est.max_num_batched_tokens} tokens, {est.max_num_seqs} sequences through the sampler)",
        f"  non-torch forward increase             {gib(est.non_torch)}",
        f"  {graphs}",
        f"  Available KV cache memory:             {gib(est.available_kv)}",
        f"  GPU KV cache size:                     {est.kv_tokens:,} tokens   (whole {est.block_size}-token blocks)",
    ]
    if r.kv_cache_tokens is not None and r.kv_cache_tokens != est.kv_tokens:
        lines.append(
            f"  planner KV tokens:                     {r.kv_cache_tokens:,}   (capped at a larger tensor-parallel "
            "size's figure: more GPUs never plan less)"
        )
    if r.max_model_len and r.kv_cache_tokens is not None:
        lines.append(
            f"  Maximum concurrency for {r.max_model_len:,} tokens per request: "
            f"{r.kv_cache_tokens / r.max_model_len:.2f}x"
        )
    return "\n".join(lines) + "\n"


def _gib(value: int | None) -> str:
    return "-" if value is None else f"{value / GIB:.1f}Gi"


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _fits(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "unknown"}[value]


def format_table(rows: list[tuple[str, FitReport]]) -> str:
    """A short human table, one row per (name, report), reasons below the rows."""
    header = ("NAME", "FITS", "GPUS", "WEIGHTS", "KV/TOKEN", "KV TOKENS", "MAX LEN", "SEQS", "MIN TP", "SUGGESTION")
    lines: list[tuple[str, ...]] = [header]
    for name, r in rows:
        gpus = f"{r.tensor_parallel_size}x{r.gpu_memory_gib:g}Gi" if r.gpu_memory_gib else str(r.tensor_parallel_size)
        max_len = "-" if r.max_model_len is None else f"{r.max_model_len} ({r.max_model_len_source})"
        kv = "-" if r.kv_cache_bytes_per_token is None else f"{r.kv_cache_bytes_per_token / 1024:g}Ki"
        lines.append(
            (
                name,
                _fits(r.fits),
                gpus,
                _gib(r.weights_bytes),
                kv,
                _num(r.kv_cache_tokens),
                max_len,
                _num(r.max_concurrent_sequences),
                "-" if r.min_tensor_parallel_size is None else str(r.min_tensor_parallel_size),
                r.suggestion or "-",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines]
    for name, r in rows:
        out.extend(f"{name}: {reason}" for reason in r.reasons)
    return "\n".join(out) + "\n"
