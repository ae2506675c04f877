"""`FitReport`: what the planner found, as a value, as JSON and as a short table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
        }


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
