"""The per-LLMDeployment gauges on the operator's /metrics, from hand-written objects."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelfleet.monitoring.fleet import Cache, families, register


def body(name: str, *, autoscaling: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
         replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "modelfleet.io/v1alpha1", "kind": "LLMDeployment",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "servedName": f"{name}-served"},
                 "gpu": {"count": 1}, "replicas": replicas,
                 "engine": {"maxNumSeqs": 32, "image": "vllm/vllm-openai:v0.11.0"},
                 "autoscaling": autoscaling or {"enabled": False}},
        "status": status or {},
    }


AUTOSCALED = body("qwen", autoscaling={"enabled": True, "minReplicas": 1, "maxReplicas": 6, "targetQueueDepth": 3},
                  status={"replicas": 3, "readyReplicas": 2, "desiredReplicas": 3,
                          "capacity": {"maxConcurrentSequences": 118, "kvCacheTokens": 965_000},
                          "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady"},
                                         {"type": "ScalingLimited", "status": "False", "reason": "WithinLimits"}]})
FIXED = body("fixed", replicas=2, status={"replicas": 2, "readyReplicas": 2})
BROKEN = {"metadata": {"name": "Bad_Name", "namespace": "team-a"}, "spec": {}}


def scrape(bodies: list[dict[str, Any]]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """What Prometheus would read: (sample name, sorted labels) -> value."""
    registry = CollectorRegistry()
    register(lambda: bodies, registry)
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def key(name: str, llm: str, **extra: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted({"namespace": "team-a", "name": llm, **extra}.items()))


def test_autoscaled_deployment_exports_targets_capacity_replicas_and_conditions() -> None:
    got = scrape([AUTOSCALED])
    want = {
        key("modelfleet_llm_info", "qwen", served_name="qwen-served", image="vllm/vllm-openai:v0.11.0"): 1,
        key("modelfleet_llm_replicas", "qwen"): 3,
        key("modelfleet_llm_ready_replicas", "qwen"): 2,
        key("modelfleet_llm_desired_replicas", "qwen"): 3,
        key("modelfleet_llm_autoscaling_min_replicas", "qwen"): 1,
        key("modelfleet_llm_autoscaling_max_replicas", "qwen"): 6,
        key("modelfleet_llm_autoscaling_target_queue_depth", "qwen"): 3,
        key("modelfleet_llm_max_num_seqs", "qwen"): 32,
        key("modelfleet_llm_capacity_max_concurrent_sequences", "qwen"): 118,
        key("modelfleet_llm_capacity_kv_cache_tokens", "qwen"): 965_000,
        key("modelfleet_llm_condition", "qwen", type="Ready", reason="AllReplicasReady"): 1,
        key("modelfleet_llm_condition", "qwen", type="ScalingLimited", reason="WithinLimits"): 0,
    }
    assert got == want


def test_fixed_deployment_has_no_autoscaling_series_and_desired_is_spec_replicas() -> None:
    got = scrape([FIXED])
    names = {name for name, _ in got}
    assert not names & {"modelfleet_llm_autoscaling_min_replicas", "modelfleet_llm_autoscaling_max_replicas",
                        "modelfleet_llm_autoscaling_target_queue_depth"}
    assert got[key("modelfleet_llm_desired_replicas", "fixed")] == 2
    assert "modelfleet_llm_capacity_kv_cache_tokens" not in names  # no capacity in status yet: no sample


def test_an_object_the_api_would_refuse_is_left_out_and_the_others_stay() -> None:
    got = scrape([BROKEN, FIXED])
    assert {dict(labels)["name"] for _, labels in got} == {"fixed"}


def test_no_llm_deployments_no_samples() -> None:
    assert scrape([]) == {}


def test_parsed_specs_are_reused_until_the_generation_changes() -> None:
    cache: Cache = {}
    first = {**AUTOSCALED, "metadata": {**AUTOSCALED["metadata"], "uid": "u1", "generation": 1}}
    families([first], cache)
    # The same generation with another maxNumSeqs cannot happen on a real API server; here it shows the
    # cached parse is used. A new generation is parsed again.
    same = {**first, "spec": {**first["spec"], "engine": {"maxNumSeqs": 64}}}
    bumped = {**same, "metadata": {**same["metadata"], "generation": 2}}
    seqs = [next(f for f in families([b], cache) if f.name == "modelfleet_llm_max_num_seqs").samples[0].value
            for b in (same, bumped)]
    assert seqs == [32, 64]
    assert list(cache) == [("team-a", "qwen")]
