"""fitcheck: the planner's verdict becomes the Fits condition and status.capacity."""

from __future__ import annotations

from modelfleet.api import LLMDeployment
from modelfleet.fitcheck import check_fit

LLAMA_8B = "hf://meta-llama/Llama-3.1-8B-Instruct"


def deployment(engine: dict[str, object], count: int = 1, uri: str = LLAMA_8B) -> LLMDeployment:
    return LLMDeployment.model_validate(
        {
            "apiVersion": "modelfleet.io/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": "m", "namespace": "ns"},
            "spec": {
                "model": {"uri": uri},
                "gpu": {"count": count, "product": "NVIDIA-H100-80GB-HBM3"},
                "engine": engine,
            },
        }
    )


def test_unset_max_model_len_still_puts_the_estimate_in_status() -> None:
    outcome = check_fit(deployment({}, count=2, uri="hf://meta-llama/Llama-3.1-70B-Instruct"))
    assert outcome.verdict.fits is True
    capacity = outcome.verdict.capacity or {}
    assert capacity["maxModelLenSource"] == "planner"
    assert capacity["kvCacheTokens"] >= capacity["maxModelLen"] > 0
    assert outcome.max_model_len == capacity["maxModelLen"]
    assert "planner estimates" in outcome.verdict.message


def test_explicit_max_model_len_errs_on_the_side_of_refusing() -> None:
    # A context exactly as long as the estimated KV room is refused: the estimate may be up to
    # 2 % above what vLLM finds (tests/planner/test_calibration.py), so vLLM might refuse it.
    probe = check_fit(deployment({"maxModelLen": 8192}, uri="hf://Qwen/Qwen3-32B"))
    assert probe.report is not None and probe.report.kv_cache_tokens
    room = probe.report.kv_cache_tokens
    at_the_edge = check_fit(deployment({"maxModelLen": room}, uri="hf://Qwen/Qwen3-32B"))
    assert at_the_edge.verdict.fits is False
    assert "margin" in at_the_edge.verdict.message
    with_margin = check_fit(deployment({"maxModelLen": room * 100 // 102 - 16}, uri="hf://Qwen/Qwen3-32B"))
    assert with_margin.verdict.fits is True
