"""Built-in catalog of common open models, from their published config.json files.

Each entry holds the config.json fields the planner reads (copied from the model's
`config.json` on the Hugging Face Hub) and is parsed by `hfconfig.parse_config`, so the
parameter count comes from the same counter a user's config file goes through (the tests
check it against the model cards). Keys are Hugging Face ids; lookups are
case-insensitive, accept `hf://org/name[/file][@revision]`, and fall back to the repository
name without the organisation and without quantization suffixes (`-AWQ`, `-GPTQ-Int4`,
`-FP8`, `-GGUF`, ...) so that `hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF` finds Llama 3.1 8B.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from .arch import ModelArch
from .hfconfig import parse_config

Config = dict[str, Any]


_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mixtral": "MixtralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "qwen3_moe": "Qwen3MoeForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
}


def _dense(
    model_type: str, layers: int, heads: int, kv: int, hidden: int, inter: int, vocab: int, max_pos: int,
    *, tied: bool = False, head_dim: int | None = None,
) -> Config:  # fmt: skip
    cfg: Config = {
        "architectures": [_ARCHITECTURES[model_type]],
        "model_type": model_type,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "hidden_size": hidden,
        "intermediate_size": inter,
        "vocab_size": vocab,
        "max_position_embeddings": max_pos,
        "tie_word_embeddings": tied,
    }
    if head_dim is not None:
        cfg["head_dim"] = head_dim
    return cfg


def _moe(base: Config, experts: int, top_k: int, expert_inter: int | None = None, key: str = "num_experts") -> Config:
    cfg = {**base, key: experts, "num_experts_per_tok": top_k}
    if expert_inter is not None:
        cfg["moe_intermediate_size"] = expert_inter
    return cfg


def _with_max_pos(cfg: Config, max_pos: int) -> Config:
    return {**cfg, "max_position_embeddings": max_pos}


_LLAMA31_8B = _dense("llama", 32, 32, 8, 4096, 14336, 128256, 131072)
_LLAMA31_70B = _dense("llama", 80, 64, 8, 8192, 28672, 128256, 131072)
_LLAMA31_405B = _dense("llama", 126, 128, 8, 16384, 53248, 128256, 131072)
_QWEN25_7B = _dense("qwen2", 28, 28, 4, 3584, 18944, 152064, 131072)
_QWEN25_14B = _dense("qwen2", 48, 40, 8, 5120, 13824, 152064, 131072)
_QWEN25_32B = _dense("qwen2", 64, 40, 8, 5120, 27648, 152064, 131072)
_QWEN25_72B = _dense("qwen2", 80, 64, 8, 8192, 29568, 152064, 131072)
_MIXTRAL_8X7B = _moe(_dense("mixtral", 32, 32, 8, 4096, 14336, 32000, 32768), 8, 2, key="num_local_experts")
_MIXTRAL_8X22B = _moe(_dense("mixtral", 56, 48, 8, 6144, 16384, 32768, 65536), 8, 2, key="num_local_experts")

# Several ids share a shape; each group lists (ids, config).
_GROUPS: tuple[tuple[tuple[str, ...], Config], ...] = (
    (("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-1B-Instruct"),
     _dense("llama", 16, 32, 8, 2048, 8192, 128256, 131072, tied=True, head_dim=64)),
    (("meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.2-3B-Instruct"),
     _dense("llama", 28, 24, 8, 3072, 8192, 128256, 131072, tied=True, head_dim=128)),
    (("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B-Instruct",
      "meta-llama/Meta-Llama-3.1-8B", "meta-llama/Meta-Llama-3.1-8B-Instruct",
      "deepseek-ai/DeepSeek-R1-Distill-Llama-8B"), _LLAMA31_8B),
    (("meta-llama/Meta-Llama-3-8B", "meta-llama/Meta-Llama-3-8B-Instruct"), _with_max_pos(_LLAMA31_8B, 8192)),
    (("meta-llama/Llama-3.1-70B", "meta-llama/Llama-3.1-70B-Instruct",
      "meta-llama/Meta-Llama-3.1-70B", "meta-llama/Meta-Llama-3.1-70B-Instruct",
      "meta-llama/Llama-3.3-70B-Instruct", "deepseek-ai/DeepSeek-R1-Distill-Llama-70B"), _LLAMA31_70B),
    (("meta-llama/Meta-Llama-3-70B", "meta-llama/Meta-Llama-3-70B-Instruct"), _with_max_pos(_LLAMA31_70B, 8192)),
    (("meta-llama/Llama-3.1-405B", "meta-llama/Llama-3.1-405B-Instruct",
      "meta-llama/Meta-Llama-3.1-405B", "meta-llama/Meta-Llama-3.1-405B-Instruct"), _LLAMA31_405B),
    (("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-chat-hf"),
     _dense("llama", 32, 32, 32, 4096, 11008, 32000, 4096)),
    (("meta-llama/Llama-2-13b-hf", "meta-llama/Llama-2-13b-chat-hf"),
     _dense("llama", 40, 40, 40, 5120, 13824, 32000, 4096)),
    (("meta-llama/Llama-2-70b-hf", "meta-llama/Llama-2-70b-chat-hf"),
     _dense("llama", 80, 64, 8, 8192, 28672, 32000, 4096)),
    (("Qwen/Qwen2-7B", "Qwen/Qwen2-7B-Instruct"), _with_max_pos(_QWEN25_7B, 32768)),
    (("Qwen/Qwen2.5-3B-Instruct",), _dense("qwen2", 36, 16, 2, 2048, 11008, 151936, 32768, tied=True)),
    (("Qwen/Qwen2.5-7B",), _QWEN25_7B),
    (("Qwen/Qwen2.5-7B-Instruct",), _with_max_pos(_QWEN25_7B, 32768)),
    (("Qwen/Qwen2.5-14B",), _QWEN25_14B),
    (("Qwen/Qwen2.5-14B-Instruct",), _with_max_pos(_QWEN25_14B, 32768)),
    (("Qwen/Qwen2.5-32B",), _QWEN25_32B),
    (("Qwen/Qwen2.5-32B-Instruct", "Qwen/Qwen2.5-Coder-32B-Instruct"), _with_max_pos(_QWEN25_32B, 32768)),
    (("Qwen/Qwen2.5-72B",), _QWEN25_72B),
    (("Qwen/Qwen2.5-72B-Instruct",), _with_max_pos(_QWEN25_72B, 32768)),
    (("Qwen/Qwen3-0.6B",), _dense("qwen3", 28, 16, 8, 1024, 3072, 151936, 40960, tied=True, head_dim=128)),
    (("Qwen/Qwen3-4B",), _dense("qwen3", 36, 32, 8, 2560, 9728, 151936, 40960, tied=True, head_dim=128)),
    (("Qwen/Qwen3-8B",), _dense("qwen3", 36, 32, 8, 4096, 12288, 151936, 40960, head_dim=128)),
    (("Qwen/Qwen3-14B",), _dense("qwen3", 40, 40, 8, 5120, 17408, 151936, 40960, head_dim=128)),
    (("Qwen/Qwen3-32B",), _dense("qwen3", 64, 64, 8, 5120, 25600, 151936, 40960, head_dim=128)),
    (("Qwen/Qwen3-30B-A3B",),
     _moe(_dense("qwen3_moe", 48, 32, 4, 2048, 6144, 151936, 40960, head_dim=128), 128, 8, 768)),
    (("Qwen/Qwen3-235B-A22B",),
     _moe(_dense("qwen3_moe", 94, 64, 4, 4096, 12288, 151936, 40960, head_dim=128), 128, 8, 1536)),
    (("mistralai/Mistral-7B-v0.3", "mistralai/Mistral-7B-Instruct-v0.3"),
     _dense("mistral", 32, 32, 8, 4096, 14336, 32768, 32768)),
    (("mistralai/Mistral-7B-Instruct-v0.2",), _dense("mistral", 32, 32, 8, 4096, 14336, 32000, 32768)),
    (("mistralai/Mistral-Nemo-Instruct-2407", "mistralai/Mistral-Nemo-Base-2407"),
     _dense("mistral", 40, 32, 8, 5120, 14336, 131072, 1024000, head_dim=128)),
    (("mistralai/Mixtral-8x7B-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1"), _MIXTRAL_8X7B),
    (("mistralai/Mixtral-8x22B-v0.1", "mistralai/Mixtral-8x22B-Instruct-v0.1"), _MIXTRAL_8X22B),
    (("google/gemma-2-2b", "google/gemma-2-2b-it"),
     _dense("gemma2", 26, 8, 4, 2304, 9216, 256000, 8192, tied=True, head_dim=256)),
    (("google/gemma-2-9b", "google/gemma-2-9b-it"),
     _dense("gemma2", 42, 16, 8, 3584, 14336, 256000, 8192, tied=True, head_dim=256)),
    (("google/gemma-2-27b", "google/gemma-2-27b-it"),
     _dense("gemma2", 46, 32, 16, 4608, 36864, 256000, 8192, tied=True, head_dim=128)),
    (("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",), _dense("qwen2", 28, 12, 2, 1536, 8960, 151936, 131072)),
    (("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",), _QWEN25_7B),
    (("deepseek-ai/DeepSeek-R1-Distill-Qwen-14B",), _QWEN25_14B),
    (("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",), _QWEN25_32B),
)  # fmt: skip

CATALOG: dict[str, Config] = {model_id: cfg for ids, cfg in _GROUPS for model_id in ids}

_BY_ID: dict[str, str] = {model_id.lower(): model_id for model_id in CATALOG}
_QUANT_SUFFIX = re.compile(
    r"(?i)(-(awq|gptq|gguf|fp8|int4|int8|w4a16|w8a8|w8a16|bnb|4bit|8bit|dynamic|quantized|hf|[0-9]+bit))+$"
)


def _basename_key(repo_name: str) -> str:
    name = _QUANT_SUFFIX.sub("", repo_name.lower())
    return name.removeprefix("meta-")


_BY_BASENAME: dict[str, list[str]] = {}
for _model_id in CATALOG:
    _BY_BASENAME.setdefault(_basename_key(_model_id.split("/", 1)[1]), []).append(_model_id)


def model_id_from_uri(uri: str) -> str | None:
    """`org/name` from `hf://org/name[/path][@revision]`, or None for other schemes."""
    if not uri.lower().startswith("hf://"):
        return None
    parts = uri[len("hf://") :].split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    name = re.split(r"[@:]", parts[1], maxsplit=1)[0]
    return f"{parts[0]}/{name}"


def resolve_id(model: str) -> str | None:
    """The catalog id for an HF id or `hf://` uri, or None when the catalog does not know it."""
    model_id = model_id_from_uri(model) if "://" in model else model.strip()
    if not model_id:
        return None
    exact = _BY_ID.get(model_id.lower())
    if exact:
        return exact
    candidates = _BY_BASENAME.get(_basename_key(model_id.rsplit("/", 1)[-1]), [])
    # Several ids may share a name (meta-llama/Llama-3.1-8B and .../Meta-Llama-3.1-8B); that is
    # only ambiguous when their configs differ.
    if candidates and all(CATALOG[c] == CATALOG[candidates[0]] for c in candidates):
        return candidates[0]
    return None


@cache
def _parsed(model_id: str) -> ModelArch:
    return parse_config(CATALOG[model_id], name=model_id)


def lookup(model: str) -> ModelArch | None:
    """The architecture of a catalog model (HF id or `hf://` uri), or None."""
    model_id = resolve_id(model)
    return _parsed(model_id) if model_id else None


def entries() -> Mapping[str, Config]:
    """Every catalog entry (HF id -> config.json subset)."""
    return CATALOG
