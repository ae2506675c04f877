"""The built-in catalog: every entry parses, and parameter counts match the model cards."""

from __future__ import annotations

import pytest

from modelfleet.planner import catalog, valid_tensor_parallel_sizes
from modelfleet.planner.hfconfig import parse_config


@pytest.mark.parametrize("model_id", sorted(catalog.entries()))
def test_each_entry_parses_and_heads_divide(model_id: str) -> None:
    arch = parse_config(catalog.entries()[model_id], name=model_id)
    assert arch.num_attention_heads % arch.num_key_value_heads == 0
    assert arch.max_position_embeddings is not None and arch.max_position_embeddings >= 4096
    assert arch.unquantized_parameters is not None and 0 < arch.unquantized_parameters < arch.parameters
    sizes = valid_tensor_parallel_sizes(arch)
    assert sizes[:2] == [1, 2]  # every catalog model can run on 1 or 2 GPUs (heads are even)
    assert all(arch.num_attention_heads % tp == 0 for tp in sizes)


# Published parameter counts (model cards / Hub safetensors metadata), in billions.
@pytest.mark.parametrize(
    ("model_id", "billions"),
    [
        ("meta-llama/Llama-3.2-1B-Instruct", 1.24),
        ("meta-llama/Llama-3.2-3B-Instruct", 3.21),
        ("meta-llama/Llama-3.1-8B-Instruct", 8.03),
        ("meta-llama/Llama-3.1-70B-Instruct", 70.6),
        ("meta-llama/Llama-3.1-405B-Instruct", 406),
        ("meta-llama/Llama-2-7b-hf", 6.74),
        ("meta-llama/Llama-2-13b-hf", 13.0),
        ("Qwen/Qwen2.5-7B-Instruct", 7.61),
        ("Qwen/Qwen2.5-14B-Instruct", 14.7),
        ("Qwen/Qwen2.5-72B-Instruct", 72.7),
        ("Qwen/Qwen3-8B", 8.19),
        ("Qwen/Qwen3-30B-A3B", 30.5),
        ("Qwen/Qwen3-235B-A22B", 235),
        ("mistralai/Mistral-7B-Instruct-v0.3", 7.25),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 46.7),
        ("mistralai/Mixtral-8x22B-Instruct-v0.1", 141),
        ("google/gemma-2-9b-it", 9.24),
        ("google/gemma-2-27b-it", 27.2),
        ("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", 1.78),
    ],
)
def test_parameter_count_matches_model_card(model_id: str, billions: float) -> None:
    arch = catalog.lookup(model_id)
    assert arch is not None
    assert arch.parameters / 1e9 == pytest.approx(billions, rel=0.01)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("hf://meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("hf://META-LLAMA/llama-3.1-8b-instruct@main", "meta-llama/Llama-3.1-8B-Instruct"),
        ("hf://hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4", "meta-llama/Llama-3.1-70B-Instruct"),
        ("hf://Qwen/Qwen2.5-7B-Instruct-AWQ", "Qwen/Qwen2.5-7B-Instruct"),
        ("hf://neuralmagic/Meta-Llama-3.1-8B-Instruct-FP8", "meta-llama/Llama-3.1-8B-Instruct"),
        ("hf://bartowski/Meta-Llama-3.1-8B-Instruct-GGUF/Meta-Llama-3.1-8B-Instruct-Q4_K_M.gguf",
         "meta-llama/Llama-3.1-8B-Instruct"),
        ("hf://someone/unknown-model", None),
        ("s3://bucket/Llama-3.1-8B-Instruct", None),
        ("pvc://models/llama", None),
    ],
)  # fmt: skip
def test_lookup_by_id_and_uri(query: str, expected: str | None) -> None:
    assert catalog.resolve_id(query) == expected


def test_max_context_differs_between_base_and_instruct_where_published() -> None:
    # Qwen2.5-7B base config: 131072; the Instruct config: 32768 (YaRN needed beyond).
    base, instruct = catalog.lookup("Qwen/Qwen2.5-7B"), catalog.lookup("Qwen/Qwen2.5-7B-Instruct")
    assert base is not None and instruct is not None
    assert (base.max_position_embeddings, instruct.max_position_embeddings) == (131072, 32768)
