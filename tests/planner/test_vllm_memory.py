"""engines/vllm/memory.py: versions, vLLM's batch defaults, CUDA-visible totals.

Expected values are vLLM's own (arg_utils.py `get_batch_defaults`) and published log figures.
"""

from __future__ import annotations

import pytest

from modelfleet.api import LLMDeploymentSpec
from modelfleet.engines.vllm.memory import (
    ModelShape,
    Version,
    batch_defaults,
    cuda_total_gib,
    estimate,
    parse_version,
)
from modelfleet.planner.spec import plan_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.32.0", Version(0, 32, 0)), ("v0.10.1.1", Version(0, 10, 1)), ("0.7", Version(0, 7, 0)),
     ("vllm/vllm-openai:v0.11.0", Version(0, 11, 0))],
)  # fmt: skip
def test_parse_version(text: str, expected: Version) -> None:
    assert parse_version(text) == expected


def test_parse_version_refuses_text_without_a_number() -> None:
    with pytest.raises(ValueError, match="not a vLLM version"):
        parse_version("latest")


@pytest.mark.parametrize(
    ("engine", "expected"),
    [
        ({}, "0.32.0"),  # the pinned default release
        ({"version": "0.11.0"}, "0.11.0"),
        ({"image": "vllm/vllm-openai:v0.11.0"}, "0.11.0"),  # the official image's tag names it
        ({"image": "registry.local/vllm:custom", "version": "0.11.0"}, "0.11.0"),
        ({"image": "registry.local/vllm:custom"}, "0.32.0"),  # refused by the engine; default model
    ],
)
def test_plan_spec_uses_the_release_the_engine_resolves(engine: dict[str, str], expected: str) -> None:
    spec = LLMDeploymentSpec.model_validate(
        {"model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}, "gpu": {"product": "NVIDIA-H100-80GB-HBM3"},
         "engine": engine}
    )
    assert plan_spec(spec).vllm_version == expected


@pytest.mark.parametrize(
    ("version", "gib", "product", "max_len", "expected"),
    [
        # get_batch_defaults: >= 70 GiB and not an A100 -> 8192 tokens / 1024 sequences (serve).
        ("0.11.0", 79.65, "NVIDIA-H100-80GB-HBM3", 16000, (8192, 1024)),
        # A100 excluded since PR 17885 (v0.9): the v0.10.1.1 logs say max_num_batched_tokens=2048.
        ("0.10.1", 80.0, "NVIDIA-A100-SXM4-80GB", 16384, (2048, 256)),
        ("0.8.5", 80.0, "NVIDIA-A100-SXM4-80GB", 16384, (8192, 1024)),
        ("0.32.0", 22.49, "NVIDIA-L4", 8192, (2048, 256)),
        # capped at max_num_seqs x max_model_len, then max_num_seqs at the tokens
        ("0.32.0", 79.65, "NVIDIA-H100-80GB-HBM3", 4, (4096, 1024)),
        # V0 without chunked prefill profiles max(max_model_len, 2048); > 32K chunks at 512.
        ("0.6.4", 24.0, "NVIDIA-GeForce-RTX-3090", 20000, (20000, 256)),
        ("0.7.2", 23.99, "NVIDIA-GeForce-RTX-4090", 131072, (512, 256)),
    ],
)
def test_batch_defaults(version: str, gib: float, product: str, max_len: int, expected: tuple[int, int]) -> None:
    got = batch_defaults(parse_version(version), gib, product, max_len)
    assert (got.max_num_batched_tokens, got.max_num_seqs) == expected


@pytest.mark.parametrize(
    ("nvidia_smi_gib", "cuda_gib"),
    # llm-d "H100 GPUs (79.18 GiB total memory)"; "Free memory on device (78.84/79.25 GiB)";
    # "(3.71/39.39 GiB)"; vLLM issue 10517 "total_gpu_memory=23.58GiB".
    [(79.65, 79.18), (80.0, 79.25), (40.0, 39.39), (24.0, 23.58)],
)
def test_cuda_total_matches_published_totals(nvidia_smi_gib: float, cuda_gib: float) -> None:
    assert cuda_total_gib(nvidia_smi_gib) == pytest.approx(cuda_gib, abs=0.005)


def test_cuda_graphs_count_in_the_budget_from_v0_21() -> None:
    shape = ModelShape(num_layers=32, hidden_size=4096, intermediate_size=14336, vocab_size=128256)
    common = {
        "shape": shape, "tp": 1, "gpu_memory_gib": 79.65, "gpu_product": "NVIDIA-H100-80GB-HBM3",
        "utilization": 0.9, "weights_per_gpu": 15 * 2**30, "kv_bytes_per_token_per_gpu": 131072,
        "max_model_len": 16000, "max_num_seqs": 256,
    }  # fmt: skip
    old = estimate(version="0.20.0", **common)  # type: ignore[arg-type]
    new = estimate(version="0.21.0", **common)  # type: ignore[arg-type]
    assert not old.cuda_graphs_in_budget and new.cuda_graphs_in_budget
    # KV pool in whole 16-token blocks of 131,072 bytes per token.
    assert old.kv_tokens % 16 == 0 and old.kv_tokens == old.available_kv // (16 * 131072) * 16
    assert new.available_kv < old.available_kv - new.cuda_graphs + 1
