"""Reading config.json: the shipped fixtures, MoE, and refusals of what is not a decoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelfleet.planner import PlanInputError
from modelfleet.planner.hfconfig import count_parameters, load_config, parse_config

DATA = Path(__file__).parent / "data"


def test_dense_llama_fixture() -> None:
    arch = load_config(DATA / "llama_dense_config.json")
    assert (arch.num_layers, arch.num_attention_heads, arch.num_key_value_heads, arch.head_dim) == (32, 32, 8, 128)
    assert arch.max_position_embeddings == 131072
    assert round(arch.parameters / 1e9, 2) == 8.03  # model card: 8.03B
    assert arch.unquantized_parameters == 2 * 128256 * 4096 + 65 * 4096  # embed + lm_head + norms
    assert not arch.is_moe and arch.active_intermediate_size == 14336


def test_moe_mixtral_fixture_counts_every_expert() -> None:
    arch = load_config(DATA / "mixtral_moe_config.json")
    assert arch.is_moe and arch.num_experts == 8
    assert round(arch.parameters / 1e9, 1) == 46.7  # model card: 46.7B (all experts loaded)
    assert arch.active_intermediate_size == 2 * 14336  # top-2 experts run per token
    parts = count_parameters(json.loads((DATA / "mixtral_moe_config.json").read_text()))
    assert parts.mlp == 32 * (8 * 3 * 4096 * 14336 + 4096 * 8)


def test_directory_is_read_as_its_config_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((DATA / "llama_dense_config.json").read_text())
    assert load_config(tmp_path).num_layers == 32


def test_tied_embeddings_counted_once() -> None:
    cfg = json.loads((DATA / "llama_dense_config.json").read_text())
    untied = count_parameters(cfg)
    tied = count_parameters({**cfg, "tie_word_embeddings": True})
    assert untied.total - tied.total == 128256 * 4096


def test_text_config_of_a_multimodal_model_is_used() -> None:
    cfg = json.loads((DATA / "llama_dense_config.json").read_text())
    wrapped = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava", "text_config": cfg}
    assert parse_config(wrapped).num_layers == 32


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}), "num_hidden_layers"),
        ((DATA / "bert_encoder_config.json").read_text(), "decoder-only"),
        (json.dumps({"model_type": "t5", "is_encoder_decoder": True}), "decoder-only"),
        (json.dumps({"architectures": ["ResNetForImageClassification"]}), "causal language model"),
        (
            json.dumps(
                {"architectures": ["DeepseekV3ForCausalLM"], "num_hidden_layers": 61, "num_attention_heads": 128,
                 "hidden_size": 7168, "vocab_size": 129280, "kv_lora_rank": 512}
            ),
            "latent attention",
        ),
        (json.dumps({"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 0, "num_attention_heads": 32,
                     "hidden_size": 4096, "vocab_size": 32000, "intermediate_size": 11008}), "positive integer"),
        (json.dumps({"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 2, "num_attention_heads": 32,
                     "num_key_value_heads": 5, "hidden_size": 4096, "vocab_size": 32000,
                     "intermediate_size": 11008}), "multiple of"),
    ],
)  # fmt: skip
def test_unusable_configs_raise_plan_input_error(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(PlanInputError, match=message):
        load_config(path)
    assert issubclass(PlanInputError, ValueError)
