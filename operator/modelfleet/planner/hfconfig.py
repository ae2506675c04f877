"""Read a Hugging Face config.json into a `ModelArch`, counting parameters when needed.

Dense and mixture-of-experts decoders in the Llama family layout are understood: Llama,
Mistral, Mixtral, Qwen2/2.5 (q/k/v bias), Qwen3 (q/k norms) and Qwen3-MoE, Gemma/Gemma 2
(tied embeddings, four norms per layer), DeepSeek-R1 distills (Llama/Qwen2 shapes). A
multimodal config with a `text_config` is read through its text decoder (the vision tower is
not counted). Encoders, encoder-decoders and multi-head latent attention (DeepSeek-V2/V3,
whose KV cache is not 2 x heads x head_dim) are refused with `PlanInputError`.

Parameter count: embeddings (vocab x hidden), per layer attention (q and o: hidden x heads x
head_dim; k and v: hidden x kv_heads x head_dim; biases when the family has them), MLP (gated:
3 x hidden x intermediate; experts x that for MoE, plus the router and any shared expert),
norms, the final norm, and lm_head unless tied to the embeddings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .arch import ModelArch
from .errors import PlanInputError

_NOT_DECODERS = {
    "bert", "roberta", "xlm-roberta", "deberta", "deberta-v2", "distilbert", "electra", "albert",
    "t5", "mt5", "umt5", "bart", "mbart", "pegasus", "marian", "whisper", "vit", "clip",
    "clip_vision_model", "siglip", "wav2vec2", "hubert", "encoder-decoder",
}  # fmt: skip
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3_text"}
_QKV_BIAS = {"qwen2", "qwen2_moe"}
_QK_NORM = {"qwen3", "qwen3_moe", "gemma3_text"}
_FOUR_NORMS = {"gemma2", "gemma3_text"}


@dataclass(frozen=True)
class ParameterCount:
    """Parameters of a decoder by part."""

    embedding: int
    attention: int
    mlp: int
    norms: int
    lm_head: int

    @property
    def total(self) -> int:
        """All parameters."""
        return self.embedding + self.attention + self.mlp + self.norms + self.lm_head

    @property
    def unquantized(self) -> int:
        """Parameters weight quantization leaves in 16 bits (embeddings, lm_head, norms)."""
        return self.embedding + self.lm_head + self.norms


def _int(cfg: Mapping[str, Any], key: str, *, required: bool = True, default: int | None = None) -> int | None:
    value = cfg.get(key)
    if value is None:
        if required and default is None:
            raise PlanInputError(f"config.json has no {key!r}: is this a decoder-only language model?")
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PlanInputError(f"config.json {key!r} must be a positive integer, got {value!r}")
    return value


def _req(cfg: Mapping[str, Any], key: str) -> int:
    value = _int(cfg, key)
    assert value is not None
    return value


def _decoder_section(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """The mapping holding the text decoder's fields (top level, or `text_config`)."""
    model_type = str(cfg.get("model_type", "")).lower()
    architectures = [str(a) for a in cfg.get("architectures") or []]
    if cfg.get("is_encoder_decoder") or model_type in _NOT_DECODERS:
        raise PlanInputError(
            f"config.json describes a {model_type or 'non-decoder'} model; only decoder-only LLMs can be planned"
        )
    causal = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
    if architectures and not any(a.endswith(causal) for a in architectures):
        raise PlanInputError(
            f"config.json architectures {architectures} are not a causal language model; "
            "only decoder-only LLMs can be planned"
        )
    if "num_hidden_layers" not in cfg and isinstance(cfg.get("text_config"), Mapping):
        text = cfg["text_config"]
        merged = {**{k: v for k, v in cfg.items() if k != "text_config"}, **text}
        merged.setdefault("model_type", text.get("model_type", model_type))
        return merged
    return cfg


def count_parameters(cfg: Mapping[str, Any]) -> ParameterCount:
    """Count a decoder's parameters from its config.json mapping."""
    cfg = _decoder_section(cfg)
    model_type = str(cfg.get("model_type", "")).lower()
    layers = _req(cfg, "num_hidden_layers")
    hidden = _req(cfg, "hidden_size")
    heads = _req(cfg, "num_attention_heads")
    kv_heads = _int(cfg, "num_key_value_heads", default=heads) or heads
    head_dim = _int(cfg, "head_dim", default=hidden // heads) or hidden // heads
    vocab = _req(cfg, "vocab_size")

    q_out, kv_out = heads * head_dim, kv_heads * head_dim
    attention = hidden * q_out + 2 * hidden * kv_out + q_out * hidden
    if model_type in _QKV_BIAS or cfg.get("attention_bias"):
        attention += q_out + 2 * kv_out + (hidden if cfg.get("attention_bias") else 0)
    if model_type in _QK_NORM:
        attention += 2 * head_dim

    mlp = _mlp_per_layer(cfg, hidden, layers)
    norms_per_layer = 4 if model_type in _FOUR_NORMS else 2
    tied = cfg.get("tie_word_embeddings")
    if tied is None:
        tied = model_type in _TIED_BY_DEFAULT
    embedding = vocab * hidden
    return ParameterCount(
        embedding=embedding,
        attention=layers * attention,
        mlp=mlp,
        norms=layers * norms_per_layer * hidden + hidden,
        lm_head=0 if tied else embedding,
    )


def _experts(cfg: Mapping[str, Any]) -> int | None:
    for key in ("num_local_experts", "num_experts", "n_routed_experts"):
        value = cfg.get(key)
        if isinstance(value, int) and value > 1:
            return value
    return None


def _moe_layers(cfg: Mapping[str, Any], layers: int) -> int:
    step = cfg.get("decoder_sparse_step") or 1
    dense_only = set(cfg.get("mlp_only_layers") or [])
    return sum(1 for i in range(layers) if i not in dense_only and (i + 1) % step == 0)


def _mlp_per_layer(cfg: Mapping[str, Any], hidden: int, layers: int) -> int:
    """All MLP parameters of the model (every expert counts: all are loaded)."""
    experts = _experts(cfg)
    dense_width = _int(cfg, "intermediate_size", required=experts is None)
    if experts is None:
        assert dense_width is not None
        return layers * 3 * hidden * dense_width
    expert_width = _int(cfg, "moe_intermediate_size", required=False) or dense_width
    if expert_width is None:
        raise PlanInputError("config.json has no 'moe_intermediate_size' or 'intermediate_size' for its experts")
    moe_layers = _moe_layers(cfg, layers)
    shared = _int(cfg, "shared_expert_intermediate_size", required=False) or 0
    per_moe_layer = experts * 3 * hidden * expert_width + hidden * experts
    if shared:
        per_moe_layer += 3 * hidden * shared + hidden  # shared expert and its gate
    dense_layers = layers - moe_layers
    return moe_layers * per_moe_layer + dense_layers * 3 * hidden * (dense_width or expert_width)


def _active_intermediate(cfg: Mapping[str, Any]) -> int | None:
    experts = _experts(cfg)
    if experts is None:
        return _int(cfg, "intermediate_size", required=False)
    width = _int(cfg, "moe_intermediate_size", required=False) or _int(cfg, "intermediate_size", required=False)
    top_k = _int(cfg, "num_experts_per_tok", required=False) or 2
    shared = _int(cfg, "shared_expert_intermediate_size", required=False) or 0
    return (width or 0) * top_k + shared or None


def parse_config(cfg: Mapping[str, Any], name: str = "", parameters: int | None = None) -> ModelArch:
    """A `ModelArch` from a config.json mapping; `parameters` overrides the counted total."""
    if not isinstance(cfg, Mapping):
        raise PlanInputError("config.json must hold a JSON object")
    section = _decoder_section(cfg)
    if section.get("kv_lora_rank") or section.get("q_lora_rank"):
        raise PlanInputError(
            "config.json uses multi-head latent attention (kv_lora_rank, DeepSeek-V2/V3); "
            "its KV cache is not 2 x heads x head_dim and this planner does not model it"
        )
    count = count_parameters(section)
    heads = _req(section, "num_attention_heads")
    hidden = _req(section, "hidden_size")
    return ModelArch(
        num_layers=_req(section, "num_hidden_layers"),
        num_attention_heads=heads,
        num_key_value_heads=_int(section, "num_key_value_heads", default=heads) or heads,
        head_dim=_int(section, "head_dim", default=hidden // heads) or hidden // heads,
        parameters=parameters if parameters is not None else count.total,
        max_position_embeddings=_int(section, "max_position_embeddings", required=False),
        name=name or str(section.get("_name_or_path") or ""),
        hidden_size=hidden,
        active_intermediate_size=_active_intermediate(section),
        vocab_size=_int(section, "vocab_size", required=False),
        unquantized_parameters=count.unquantized,
        num_experts=_experts(section),
    )


def load_config(path: str | Path) -> ModelArch:
    """Read a config.json file (or a directory holding one) into a `ModelArch`."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanInputError(f"cannot read model config {str(p)!r}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PlanInputError(f"model config {str(p)!r} is not UTF-8 text") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanInputError(f"model config {str(p)!r} is not valid JSON (line {exc.lineno}: {exc.msg})") from exc
    if not isinstance(data, dict):
        raise PlanInputError(f"model config {str(p)!r} must hold a JSON object")
    return parse_config(data, name=str(data.get("_name_or_path") or p.parent.name))
