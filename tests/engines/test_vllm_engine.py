"""The vLLM engine seam: release resolution, refusals, table lookups, per-release rendering (pure).

Expected values come from vLLM's documentation and source as cited, not from the tables.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelfleet import api, engines, reconcile
from modelfleet.engines import vllm
from modelfleet.engines.base import EngineSpecError


def spec(**over: Any) -> api.LLMDeploymentSpec:
    return api.LLMDeploymentSpec.model_validate({"model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}, **over})


@pytest.mark.parametrize(
    ("version", "image", "release"),
    [
        (None, None, "0.32.0"),
        ("0.11.0", None, "0.11.0"),
        ("0.32.0", "vllm/vllm-openai:v0.32.0", "0.32.0"),
        (None, "vllm/vllm-openai:v0.11.0", "0.11.0"),  # objects created before 0.32.0 was the default
        (None, "docker.io/vllm/vllm-openai:v0.32.0", "0.32.0"),
        (None, "vllm/vllm-openai:v0.11.0@sha256:" + "a" * 64, "0.11.0"),
        ("0.11.0", "registry.local/vllm:patched", "0.11.0"),
    ],
)
def test_release_resolution(version: str | None, image: str | None, release: str) -> None:
    assert vllm.resolve_version(version, image) == release


@pytest.mark.parametrize(
    ("version", "image", "field", "words"),
    [
        (None, "vllm/vllm-openai:v0.10.1", "engine.image", ["0.10.1", "not a supported", "0.32.0, 0.11.0"]),
        (None, "registry.local/vllm:patched", "engine.version", ["custom image", "registry.local/vllm:patched"]),
        ("0.32.0", "vllm/vllm-openai:v0.11.0", "engine.image", ["0.11.0", "0.32.0", "agree"]),
        ("0.9.0", None, "engine.version", ["0.9.0", "not a supported"]),
    ],
)
def test_release_refusals_name_field_value_and_release(
    version: str | None, image: str | None, field: str, words: list[str]
) -> None:
    with pytest.raises(EngineSpecError) as info:
        vllm.resolve_version(version, image)
    message = str(info.value)
    assert message.startswith(f"spec.{field}: "), message
    for word in words:
        assert word in message, message


@pytest.mark.parametrize(
    ("over", "field", "value", "version"),
    [
        # vLLM 0.32.0's QuantizationMethods no longer lists bitsandbytes or gguf
        # (vllm/model_executor/layers/quantization/__init__.py).
        ({"quantization": "gguf"}, "quantization", "gguf", "0.32.0"),
        ({"quantization": "bitsandbytes"}, "quantization", "bitsandbytes", "0.32.0"),
    ],
)
def test_values_the_release_lacks_are_refused(over: dict[str, Any], field: str, value: str, version: str) -> None:
    problems = engines.spec_problems(spec(**over))
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"spec.{field}: {value} (vLLM {version}): "), problems[0]


@pytest.mark.parametrize("quantization", ["gguf", "bitsandbytes", "awq", "gptq", "fp8"])
def test_old_release_loads_the_older_formats(quantization: str) -> None:
    assert engines.spec_problems(spec(quantization=quantization, engine={"version": "0.11.0"})) == []


@pytest.mark.parametrize("kv", ["fp8", "fp8_e4m3", "fp8_e5m2"])
@pytest.mark.parametrize("version", ["0.11.0", "0.32.0"])
def test_kv_cache_dtypes_accepted_by_both_releases(kv: str, version: str) -> None:
    assert engines.spec_problems(spec(engine={"version": version, "kvCacheDtype": kv})) == []


@pytest.mark.parametrize(
    ("token", "dest"),
    [
        ("--max-model-len", "max_model_len"),
        ("--max_model_len=4096", "max_model_len"),  # FlexibleArgumentParser: `_` is `-`
        ("--max-model-l", "max_model_len"),  # argparse allow_abbrev: unambiguous prefix
        ("-tp", "tensor_parallel_size"),
        ("--no-enable-prefix-caching", "enable_prefix_caching"),
        ("--enforce-eager", "enforce_eager"),
        ("--max", None),  # ambiguous: --max-model-len, --max-num-seqs, ...
        ("--no-such-flag", None),
        ("meta-llama/Llama-3.1-8B", None),  # not an option
    ],
)
@pytest.mark.parametrize("version", ["0.11.0", "0.32.0"])
def test_resolve_follows_vllm_parsing(version: str, token: str, dest: str | None) -> None:
    option = vllm.flag_table(version).resolve(token)
    assert (option.dest if option else None) == dest


def test_negative_forms() -> None:
    table = vllm.flag_table("0.32.0")
    assert table.sets_false("--no-enable-prefix-caching")
    assert not table.sets_false("--enable-prefix-caching")
    assert len(table.candidates("--max")) > 1


def test_release_differences_in_the_tables() -> None:
    old, new = vllm.flag_table("0.11.0"), vllm.flag_table("0.32.0")
    # Removed in 0.12 (vLLM release notes): passing it to a 0.32 pod crashes it.
    assert old.resolve("--disable-log-requests") is not None
    assert new.resolve("--disable-log-requests") is None
    # New scheduler limit in later releases.
    assert new.resolve("--max-num-queued-reqs") is not None
    assert old.resolve("--max-num-queued-reqs") is None
    # `--max-model-len auto`: only the newer parser takes it.
    assert new.features["max_model_len_auto"] and not old.features["max_model_len_auto"]


@pytest.mark.parametrize("version", ["0.11.0", "0.32.0"])
def test_metric_names(version: str) -> None:
    names = vllm.metric_names(version)
    # vllm/v1/metrics/loggers.py of both releases.
    assert names.waiting == "vllm:num_requests_waiting"
    assert names.running == "vllm:num_requests_running"
    assert names.kv_cache_usage == "vllm:kv_cache_usage_perc"
    assert names.ttft == "vllm:time_to_first_token_seconds"


def test_deprecated_kv_name_only_while_a_release_can_export_it() -> None:
    # 0.11.0 creates vllm:gpu_cache_usage_perc only under show_hidden_metrics; 0.32.0 not at all.
    old, new = vllm.flag_table("0.11.0"), vllm.flag_table("0.32.0")
    assert old.has_metric("vllm:gpu_cache_usage_perc", include_hidden=True)
    assert not old.has_metric("vllm:gpu_cache_usage_perc")
    assert not new.has_metric("vllm:gpu_cache_usage_perc", include_hidden=True)
    assert vllm.role_names("kv_cache_usage") == ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


def test_owned_flags_cover_every_spelling() -> None:
    owned = vllm.owned_flags("0.32.0")
    for flag, field in [("--tensor-parallel-size", "gpu.count"), ("-tp", "gpu.count"), ("-q", "quantization"),
                        ("--no-enable-prefix-caching", "engine.enablePrefixCaching"), ("--api-key", "apiKeySecretRef"),
                        ("--device-memory-utilization", "engine.gpuMemoryUtilization")]:
        assert owned[flag] == field
    assert {"HF_TOKEN", "VLLM_API_KEY", "HF_HOME", "HF_ENDPOINT"} <= set(vllm.OWNED_ENV)


def test_engine_refusal_holds_the_rollout() -> None:
    body = {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": "m", "namespace": "n"},
            "spec": {"model": {"uri": "hf://a/b"}, "quantization": "gguf"}}
    outcome = reconcile.engine_refusal(api.LLMDeployment.model_validate(body))
    assert outcome is not None
    assert outcome.verdict.fits is False and outcome.verdict.reason == "UnsupportedByEngine"
    assert "spec.quantization: gguf (vLLM 0.32.0)" in outcome.verdict.message


@pytest.mark.parametrize("command", ["render", "plan"])
def test_cli_exits_2_naming_field_value_and_release(tmp_path: Path, command: str) -> None:
    doc = {"apiVersion": api.API_VERSION, "kind": api.KIND, "metadata": {"name": "q"},
           "spec": {"model": {"uri": "hf://a/b"}, "quantization": "bitsandbytes", "engine": {"version": "0.32.0"}}}
    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(doc))
    flag = "-f"
    proc = subprocess.run([sys.executable, "-m", "modelfleet.cli", command, flag, str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2, proc.stderr
    assert "spec.quantization: bitsandbytes (vLLM 0.32.0)" in proc.stderr, proc.stderr
    assert proc.stdout == ""
