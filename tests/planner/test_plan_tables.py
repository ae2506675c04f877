"""Quantization and GPU tables."""

from __future__ import annotations

import pytest

from modelfleet.planner import PlanInputError
from modelfleet.planner.gpus import GPUS, lookup_gpu
from modelfleet.planner.quant import gguf_type_from_uri, kv_bytes_per_element, resolve_quantization


@pytest.mark.parametrize(
    ("name", "bits"),
    [
        ("none", 16), ("BF16", 16), ("fp16", 16), ("fp8", 8), ("int8", 8),
        # AWQ/GPTQ 4-bit, group 128: 4 + fp16 scale/128 + 4-bit zero/128.
        ("awq", 4.15625), ("gptq", 4.15625),
        ("bitsandbytes", 4.5),
        ("gguf", 4.90), ("gguf-q4_k_m", 4.90), ("gguf:Q5_K_M", 5.71), ("Q8_0", 8.51),
    ],
)  # fmt: skip
def test_bits_per_weight(name: str, bits: float) -> None:
    assert resolve_quantization(name).bits_per_weight == pytest.approx(bits)


@pytest.mark.parametrize("name", ["int4", "gguf-q9_k", "", "awq-8bit"])
def test_unknown_quantization(name: str) -> None:
    with pytest.raises(PlanInputError, match="unknown quantization"):
        resolve_quantization(name)


@pytest.mark.parametrize(("dtype", "size"), [("auto", 2), ("fp8", 1), ("fp8_e4m3", 1), ("fp8_e5m2", 1)])
def test_kv_bytes_per_element(dtype: str, size: int) -> None:
    assert kv_bytes_per_element(dtype) == size


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("hf://bartowski/X-GGUF/X-Q5_K_M.gguf", "q5_k_m"),
        ("hf://org/repo/model.Q8_0.gguf", "q8_0"),
        ("file:///models/llama-3.1-8b-instruct-q4_k_s.gguf", "q4_k_s"),
        ("hf://org/repo/model-IQ4_XS.gguf", "iq4_xs"),
        ("hf://org/repo", None),
        ("hf://org/repo/model.gguf", None),
    ],
)
def test_gguf_type_from_uri(uri: str, kind: str | None) -> None:
    assert gguf_type_from_uri(uri) == kind


@pytest.mark.parametrize(
    ("label", "gib"),
    [
        # nvidia-smi totals (modal-labs/modal-client PR 2797): 81559, 81920, 40960, 23034, 46068 MiB.
        ("NVIDIA-H100-80GB-HBM3", 79.65),
        ("NVIDIA-A100-SXM4-80GB", 80.0),
        ("NVIDIA-A100-SXM4-40GB", 40.0),
        ("NVIDIA-L4", 22.49),
        ("NVIDIA-L40S", 44.99),
        ("nvidia-h100-80gb-hbm3", 79.65),  # case-insensitive
        ("NVIDIA-A100-SXM4-80GB-SHARED", 80.0),  # time-slicing suffix
        ("NVIDIA GeForce RTX 4090", 23.99),  # NVML name with spaces
        ("L4", 22.49),  # without the vendor prefix
    ],
)
def test_gpu_lookup(label: str, gib: float) -> None:
    gpu = lookup_gpu(label)
    assert gpu is not None and gpu.memory_gib == gib


@pytest.mark.parametrize("label", ["NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "NVIDIA-Unknown", ""])
def test_gpu_lookup_unknown(label: str) -> None:
    assert lookup_gpu(label) is None


def test_table_covers_the_brief() -> None:
    for product in (
        "NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-PCIe", "NVIDIA-H200", "NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-SXM4-80GB",
        "NVIDIA-L40S", "NVIDIA-L4", "NVIDIA-A10G", "NVIDIA-GeForce-RTX-4090", "NVIDIA-GeForce-RTX-3090",
        "NVIDIA-RTX-6000-Ada-Generation", "NVIDIA-B200", "AMD-Instinct-MI300X",
    ):  # fmt: skip
        assert product in GPUS
