"""cache.py: which LLMDeployments get a model cache, its key, name, size, PVC, Job and reclaim decision."""

from __future__ import annotations

import re
from typing import Any

import pytest

from modelfleet import api, cache

GIB = 1024**3
DEFAULTS = cache.CacheDefaults()
SMALL = {"numLayers": 24, "numAttentionHeads": 14, "numKeyValueHeads": 2, "headDim": 64, "parameters": 4.94e8}


def llm(name: str = "a", namespace: str = "serving", uri: str = "hf://Qwen/Qwen2.5-0.5B-Instruct",
        **model: Any) -> api.LLMDeployment:
    spec: dict[str, Any] = {"model": {"uri": uri, "architecture": SMALL, **model}}
    if "quantization" in model:
        spec["quantization"] = spec["model"].pop("quantization")
    if "podSecurity" in model:
        spec["podSecurity"] = spec["model"].pop("podSecurity")
    return api.LLMDeployment.model_validate({"metadata": {"name": name, "namespace": namespace}, "spec": spec})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3Gi", 3 * GIB), ("512Mi", 512 * 2**20), ("1Ti", 2**40), ("40G", 40 * 10**9), ("1000", 1000)],
)
def test_parse_quantity(text: str, expected: int) -> None:
    assert cache.parse_quantity(text) == expected


@pytest.mark.parametrize(
    ("checkpoint", "headroom", "expected"),
    [
        # 988e6 B = 0.920 GiB; x 1.10 = 1.012 -> 2 GiB, + 1 GiB fixed.
        (988_000_000, 10, "3Gi"),
        # Llama-3.1-8B BF16: 8.03e9 x 2 = 16.06e9 B = 14.957 GiB; x 1.10 = 16.45 -> 17, + 1.
        (16_060_000_000, 10, "18Gi"),
        # the same with 25 % headroom: 18.70 -> 19, + 1.
        (16_060_000_000, 25, "20Gi"),
        # the planner does not know the model: the cache emptyDir's bound (70B BF16 + headroom).
        (None, 10, "160Gi"),
    ],
)
def test_default_size(checkpoint: int | None, headroom: int, expected: str) -> None:
    assert cache.default_size(checkpoint, headroom) == expected


def test_key_and_name_are_deterministic_dns_labels_that_differ_per_namespace_uri_and_revision() -> None:
    base = cache.cache_key("serving", "hf://Qwen/Qwen2.5-0.5B-Instruct", "main")
    assert base == cache.cache_key("serving", "hf://Qwen/Qwen2.5-0.5B-Instruct", "main")
    others = {
        cache.cache_key("other", "hf://Qwen/Qwen2.5-0.5B-Instruct", "main"),
        cache.cache_key("serving", "hf://Qwen/Qwen2.5-1.5B-Instruct", "main"),
        cache.cache_key("serving", "hf://Qwen/Qwen2.5-0.5B-Instruct", "v2"),
    }
    assert base not in others and len(others) == 3
    long_name = cache.cache_name("hf://org/" + "A_very.Long-model_name" * 5, base)
    for name in (cache.cache_name("hf://Qwen/Qwen2.5-0.5B-Instruct", base), long_name):
        assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 52, name
    assert cache.cache_name("hf://Qwen/Qwen2.5-0.5B-Instruct", base) == f"cache-qwen2-5-0-5b-instruct-{base}"


@pytest.mark.parametrize(
    ("spec_enabled", "default_enabled", "uri", "expected"),
    [
        (None, False, "hf://Qwen/Qwen2.5-0.5B-Instruct", False),
        (None, True, "hf://Qwen/Qwen2.5-0.5B-Instruct", True),
        (False, True, "hf://Qwen/Qwen2.5-0.5B-Instruct", False),
        (True, False, "hf://Qwen/Qwen2.5-0.5B-Instruct", True),
        # a cluster default never applies to what it cannot fetch
        (None, True, "pvc://models/qwen", False),
        (None, True, "s3://bucket-a/qwen", False),
    ],
)
def test_enabled(spec_enabled: bool | None, default_enabled: bool, uri: str, expected: bool) -> None:
    model = {} if spec_enabled is None else {"cache": {"enabled": spec_enabled}}
    spec = llm(uri=uri, **model).spec
    assert cache.enabled(spec, cache.CacheDefaults(enabled=default_enabled)) is expected


def test_plan_defaults_and_overrides() -> None:
    planned = cache.plan(llm(cache={"enabled": True}, tokenSecretRef={"name": "hf", "key": "token"}),
                         988_000_000, cache.CacheDefaults(storage_class_name="nfs"))
    assert isinstance(planned, cache.CachePlan)
    assert (planned.size, planned.expected_bytes, planned.storage_class_name) == ("3Gi", 988_000_000, "nfs")
    assert (planned.access_mode, planned.reclaim, planned.revision) == ("ReadWriteMany", "Retain", "main")
    assert planned.repo == "Qwen/Qwen2.5-0.5B-Instruct" and planned.token_ref == ("hf", "token")
    assert planned.image == "vllm/vllm-openai:v0.32.0"
    given = cache.plan(llm(revision="v2", cache={"enabled": True, "size": "10Gi", "storageClassName": "fast",
                                                 "accessMode": "ReadWriteOnce"}), 988_000_000, DEFAULTS)
    assert isinstance(given, cache.CachePlan)
    assert (given.size, given.storage_class_name, given.access_mode, given.revision) == (
        "10Gi", "fast", "ReadWriteOnce", "v2")
    assert given.key != planned.key


def test_online_fp8_downloads_the_bf16_checkpoint() -> None:
    # fp8 quantizes on load: the download is the BF16 checkpoint, 2 bytes per parameter (hardening's factor).
    planned = cache.plan(llm(cache={"enabled": True}, quantization="fp8"), 494_000_000, DEFAULTS)
    assert isinstance(planned, cache.CachePlan) and planned.expected_bytes == 988_000_000


@pytest.mark.parametrize(
    ("model", "reason", "words"),
    [
        ({"cache": {"enabled": True, "size": "512Mi"}}, "CacheTooSmall", ["512Mi (0.5 GiB)", "0.9 GiB", "1Gi"]),
        ({"cache": {"enabled": True, "size": "900M"}}, "CacheTooSmall", ["900M (0.8 GiB)", "0.9 GiB"]),
        ({"uri": "hf://org/model/weights.gguf", "cache": {"enabled": True}}, "CacheUnsupportedURI", ["names a file"]),
    ],
)
def test_refusals_say_both_numbers_and_what_to_do(model: dict[str, Any], reason: str, words: list[str]) -> None:
    planned = cache.plan(llm(**model), 988_000_000, DEFAULTS)
    assert isinstance(planned, cache.CacheRefusal) and planned.reason == reason, planned
    for word in words:
        assert word in planned.message, planned.message


def test_a_size_at_least_the_checkpoint_is_accepted() -> None:
    assert isinstance(cache.plan(llm(cache={"enabled": True, "size": "1Gi"}), 988_000_000, DEFAULTS), cache.CachePlan)


@pytest.mark.parametrize(
    ("reclaims", "expected"),
    [(["Delete"], "Delete"), (["Retain"], "Retain"), (["Delete", "Retain"], "Retain"),
     (["Delete", "Delete"], "Delete")],
)
def test_reclaim_needs_every_user_to_ask_for_delete(reclaims: list[str], expected: str) -> None:
    users = [llm(f"u{i}", cache={"enabled": True, "reclaim": r}) for i, r in enumerate(reclaims)]
    assert cache.reclaim_of(users) == expected
    planned = cache.plan(users[0], 988_000_000, DEFAULTS, users)
    assert isinstance(planned, cache.CachePlan) and planned.reclaim == expected


def test_neighbours_of_another_model_do_not_count_for_reclaim() -> None:
    me = llm("a", cache={"enabled": True, "reclaim": "Delete"})
    other = llm("b", uri="hf://Qwen/Qwen2.5-1.5B-Instruct", cache={"enabled": True})
    planned = cache.plan(me, 988_000_000, DEFAULTS, [me, other])
    assert isinstance(planned, cache.CachePlan) and planned.reclaim == "Delete"


def test_pvc_and_job_have_no_owner_and_carry_the_cache_label() -> None:
    planned = cache.plan(llm(cache={"enabled": True}, tokenSecretRef={"name": "hf", "key": "token"}),
                         988_000_000, cache.CacheDefaults(backoff_limit=3))
    assert isinstance(planned, cache.CachePlan)
    pvc, job = cache.pvc(planned), cache.job(planned)
    for obj in (pvc, job, job["spec"]["template"]):
        assert obj["metadata"]["labels"][cache.CACHE_LABEL] == planned.key
        assert api.DEPLOYMENT_LABEL not in obj["metadata"]["labels"]  # not a model pod, not one user's child
        assert "ownerReferences" not in obj["metadata"]
    assert pvc["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "3Gi"}}}
    assert job["spec"]["backoffLimit"] == 3
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0] == {"name": "cache", "persistentVolumeClaim": {"claimName": planned.name}}
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["HF_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "hf", "key": "token"}}
    assert "runAsUser" not in pod["securityContext"]


def test_restricted_download_runs_non_root_with_a_writable_volume() -> None:
    planned = cache.plan(llm(cache={"enabled": True}, podSecurity="restricted"), None, DEFAULTS)
    assert isinstance(planned, cache.CachePlan)
    pod = cache.job(planned)["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 1000
    assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True


def claim(name: str, key: str, reclaim: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {cache.CACHE_LABEL: key},
                         "annotations": {cache.RECLAIM_ANNOTATION: reclaim}}}


def test_reclaimable_only_unused_caches_that_asked_for_delete() -> None:
    user = llm("a", cache={"enabled": True})
    used = cache.key_of(user, DEFAULTS)
    assert used is not None
    claims = [claim("used", used, "Delete"), claim("unused-delete", "0000000000", "Delete"),
              claim("unused-retain", "1111111111", "Retain")]
    assert cache.reclaimable(claims, [user], DEFAULTS) == ["unused-delete"]
    # a user being deleted no longer holds the cache
    leaving = user.model_copy(update={"metadata": {**user.metadata, "deletionTimestamp": "2026-01-01T00:00:00Z"}})
    assert cache.reclaimable(claims, [leaving], DEFAULTS) == ["unused-delete", "used"]


def test_users_of_a_cache_from_raw_bodies() -> None:
    a, b = llm("a", cache={"enabled": True}), llm("b", cache={"enabled": True})
    c = llm("c", uri="hf://Qwen/Qwen2.5-1.5B-Instruct", cache={"enabled": True})
    bodies = [x.model_dump(by_alias=True, exclude_none=True) for x in (a, b, c)]
    key = cache.key_of(a, DEFAULTS)
    assert key is not None
    assert cache.users(bodies, "serving", key, DEFAULTS) == ["a", "b"]
    assert cache.users(bodies, "elsewhere", key, DEFAULTS) == []
