"""The model shape the planner works on.

`ModelArch` carries what the fit check needs (layers, heads, head dim, parameters, maximum
context) plus optional detail that sharpens the estimate when a config.json or the catalog
provides it (hidden and MLP sizes for the activation reserve, vocabulary for the sampler,
and how many parameters stay unquantized: embeddings, lm_head, norms).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelfleet.api import Architecture

from .errors import PlanInputError


@dataclass(frozen=True)
class ModelArch:
    """A decoder's shape. Optional fields are None when the source does not give them."""

    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    parameters: int
    max_position_embeddings: int | None = None
    name: str = ""
    hidden_size: int | None = None
    # Per-token MLP width that runs for one token: intermediate_size for a dense model,
    # top_k x expert width (+ shared expert) for a mixture of experts.
    active_intermediate_size: int | None = None
    vocab_size: int | None = None
    # Parameters that quantization leaves in 16 bits (embeddings, untied lm_head, norms).
    unquantized_parameters: int | None = None
    num_experts: int | None = None

    def __post_init__(self) -> None:
        for field_name in ("num_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "parameters"):
            value = getattr(self, field_name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PlanInputError(f"model {field_name} must be a positive integer, got {value!r}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise PlanInputError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_key_value_heads ({self.num_key_value_heads})"
            )
        if self.max_position_embeddings is not None and self.max_position_embeddings < 1:
            raise PlanInputError("max_position_embeddings must be positive")

    @property
    def is_moe(self) -> bool:
        """True for a mixture-of-experts model."""
        return bool(self.num_experts and self.num_experts > 1)

    @property
    def effective_hidden_size(self) -> int:
        """hidden_size, or heads x head_dim when the source did not give it."""
        return self.hidden_size or self.num_attention_heads * self.head_dim

    @property
    def effective_intermediate_size(self) -> int:
        """The active MLP width, or 3.5 x hidden (the Llama ratio) when unknown."""
        return self.active_intermediate_size or (7 * self.effective_hidden_size) // 2


def kv_cache_bytes_per_token(arch: ModelArch, bytes_per_element: int) -> int:
    """Whole-model KV cache per token: 2 (K and V) x layers x KV heads x head dim x bytes.

    Exactly the formula of the design brief; with tensor parallelism each GPU holds
    1/TP of it (or one KV head per GPU when TP exceeds the KV heads, see `per_gpu`).
    """
    return 2 * arch.num_layers * arch.num_key_value_heads * arch.head_dim * bytes_per_element


def kv_cache_bytes_per_token_per_gpu(arch: ModelArch, bytes_per_element: int, tp: int) -> int:
    """KV cache per token on one GPU at tensor-parallel size `tp`.

    vLLM shards KV heads across GPUs and, when TP exceeds the KV heads, replicates them so
    that each GPU keeps one (QKVParallelLinear), hence ceil(kv_heads / tp) heads per GPU.
    """
    heads_per_gpu = -(-arch.num_key_value_heads // tp)
    return 2 * arch.num_layers * heads_per_gpu * arch.head_dim * bytes_per_element


def from_api(architecture: Architecture, name: str = "") -> ModelArch:
    """The planner's view of `spec.model.architecture`."""
    return ModelArch(
        num_layers=architecture.num_layers,
        num_attention_heads=architecture.num_attention_heads,
        num_key_value_heads=architecture.num_key_value_heads,
        head_dim=architecture.head_dim,
        parameters=int(architecture.parameters),
        max_position_embeddings=architecture.max_position_embeddings,
        name=name,
    )
