"""Bytes per parameter for each weight quantization, and bytes per KV-cache element.

Weights = quantized parameters x bits/8 + unquantized parameters x 2 bytes.

* none / bf16 / fp16: 2 bytes. fp32 checkpoints are served in 16 bits by vLLM (`--dtype auto`
  downcasts float32 to bfloat16/float16), so 2 bytes is right for `none` too.
* fp8, int8: 1 byte per linear-layer weight; per-channel/per-tensor scales are negligible.
  Embeddings and lm_head stay 16-bit (vLLM quantizes linear layers only).
* awq / gptq (4-bit, group size 128): 4 bits per weight + one fp16 scale (16 bits) and one
  packed 4-bit zero point per group of 128 weights = 4 + 16/128 + 4/128 = 4.15625 bits.
* bitsandbytes (vLLM's in-flight 4-bit NF4, block size 64 with an fp32 absmax per block,
  counted without double quantization): 4 + 32/64 = 4.5 bits.
* gguf types: llama.cpp k-quants mix block types per tensor (Q4_K_M keeps attn_v and half of
  ffn_down in Q6_K) and quantize the embeddings too, so each type is an *effective* bits per
  weight over the whole file, measured from the published Llama-3.1-8B GGUF sizes (bartowski/
  Meta-Llama-3.1-8B-Instruct-GGUF: Q8_0 8.54 GB, Q6_K 6.60, Q5_K_M 5.73, Q4_K_M 4.92,
  Q3_K_M 4.02, Q2_K 3.18 ... for 8.03e9 parameters).

KV cache: `auto` stores K/V in the model dtype (2 bytes; fp8-quantized checkpoints still
compute in bf16), every fp8 variant stores 1 byte.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .arch import ModelArch
from .errors import PlanInputError

UNQUANTIZED_BYTES = 2


@dataclass(frozen=True)
class QuantScheme:
    """How one quantization stores weights."""

    name: str
    bits_per_weight: float
    # True when the scheme quantizes embeddings and lm_head too (GGUF files do).
    quantizes_embeddings: bool = False
    description: str = ""

    @property
    def bytes_per_parameter(self) -> float:
        """Bytes per quantized parameter."""
        return self.bits_per_weight / 8


_GROUP_4BIT = 4 + 16 / 128 + 4 / 128  # 4.15625 bits

# GGUF effective bits per weight = file bytes x 8 / 8.03e9 (Llama-3.1-8B, see module docstring).
_GGUF_BPW: dict[str, float] = {
    "q8_0": 8.51,
    "q6_k": 6.58,
    "q5_k_m": 5.71,
    "q5_k_s": 5.58,
    "q4_k_m": 4.90,
    "q4_k_s": 4.67,
    "q4_0": 4.66,
    "iq4_xs": 4.43,
    "q3_k_l": 4.30,
    "q3_k_m": 4.00,
    "q3_k_s": 3.65,
    "q2_k": 3.17,
    "f16": 16.0,
    "bf16": 16.0,
}
DEFAULT_GGUF_TYPE = "q4_k_m"

SCHEMES: dict[str, QuantScheme] = {
    "none": QuantScheme("none", 16, description="checkpoint dtype (bf16/fp16)"),
    "bf16": QuantScheme("bf16", 16, description="bfloat16"),
    "fp16": QuantScheme("fp16", 16, description="float16"),
    "fp8": QuantScheme("fp8", 8, description="FP8 weights, 16-bit embeddings"),
    "int8": QuantScheme("int8", 8, description="INT8 weights (W8A8/W8A16), 16-bit embeddings"),
    "awq": QuantScheme("awq", _GROUP_4BIT, description="AWQ 4-bit, group 128"),
    "gptq": QuantScheme("gptq", _GROUP_4BIT, description="GPTQ 4-bit, group 128"),
    "bitsandbytes": QuantScheme("bitsandbytes", 4.5, description="bitsandbytes NF4, block 64"),
    **{
        f"gguf-{kind}": QuantScheme(f"gguf-{kind}", bpw, quantizes_embeddings=True, description=f"GGUF {kind}")
        for kind, bpw in _GGUF_BPW.items()
    },
}
# Quantizations the LLMDeployment spec can name (api.Quantization), lightest-first order
# used when suggesting one: fewer bits only after more bits does not fit.
SPEC_SUGGESTIONS: tuple[str, ...] = ("fp8", "bitsandbytes", "awq")

KV_BYTES_PER_ELEMENT: dict[str, int] = {"auto": 2, "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1}


def quantization_names() -> list[str]:
    """Every name `resolve_quantization` accepts (aliases excluded)."""
    return [*SCHEMES, "gguf"]


def resolve_quantization(name: str) -> QuantScheme:
    """The scheme for a quantization name, case-insensitive.

    Accepts the spec values (none, awq, gptq, fp8, bitsandbytes, gguf = Q4_K_M), the CLI
    extras (bf16, fp16, int8) and GGUF types as `gguf-q4_k_m`, `gguf:Q4_K_M` or `Q4_K_M`.
    """
    key = name.strip().lower().replace(":", "-")
    if key == "gguf":
        key = f"gguf-{DEFAULT_GGUF_TYPE}"
    if key in _GGUF_BPW and key not in SCHEMES:
        key = f"gguf-{key}"
    scheme = SCHEMES.get(key)
    if scheme is None:
        raise PlanInputError(
            f"unknown quantization {name!r}; use one of: none, bf16, fp16, fp8, int8, awq, gptq, "
            f"bitsandbytes, gguf, gguf-<type> with type in {', '.join(_GGUF_BPW)}"
        )
    return scheme


_GGUF_TYPE_IN_NAME = re.compile(r"(?i)(?<![a-z0-9])(iq4_xs|q\d_k_[sml]|q\d_k|q\d_\d|bf16|f16)(?=[^a-z0-9]|$)")


def gguf_type_from_uri(uri: str) -> str | None:
    """The GGUF type a uri's `*.gguf` file name names (`...-Q5_K_M.gguf` -> `q5_k_m`), if known."""
    path = uri.split("?", 1)[0]
    filename = path.rsplit("/", 1)[-1]
    if not filename.lower().endswith(".gguf"):
        return None
    for match in _GGUF_TYPE_IN_NAME.finditer(filename[: -len(".gguf")]):
        kind = match.group(1).lower()
        if kind in _GGUF_BPW:
            return kind
    return None


def kv_bytes_per_element(kv_cache_dtype: str) -> int:
    """Bytes per KV-cache element for vLLM's --kv-cache-dtype."""
    value = KV_BYTES_PER_ELEMENT.get(kv_cache_dtype.strip().lower())
    if value is None:
        raise PlanInputError(
            f"unknown kv cache dtype {kv_cache_dtype!r}; use one of: {', '.join(KV_BYTES_PER_ELEMENT)}"
        )
    return value


def weights_bytes(arch: ModelArch, scheme: QuantScheme) -> int:
    """Bytes of weights for the whole model (all GPUs together).

    Parameters that the scheme leaves in 16 bits (embeddings, lm_head, norms) are counted at 2
    bytes when the architecture says how many there are; without that (a bare
    spec.model.architecture) every parameter is counted at the quantized rate.
    """
    unquantized = 0 if scheme.quantizes_embeddings else min(arch.unquantized_parameters or 0, arch.parameters)
    quantized = arch.parameters - unquantized
    return round(quantized * scheme.bits_per_weight / 8) + unquantized * UNQUANTIZED_BYTES
