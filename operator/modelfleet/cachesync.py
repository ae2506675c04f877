"""The model cache's edge: create its PVC and download Job when absent, read back what they do.

The decisions are pure (cache.py plans, status.py classifies); this module only sequences the calls
that kube/ makes.
"""

from __future__ import annotations

from typing import Any

from modelfleet import api, cache, status
from modelfleet.kube import Kube


def neighbours(kube: Kube, llm: api.LLMDeployment) -> list[api.LLMDeployment]:
    """The other LLMDeployments of the namespace that parse (the users of a shared cache are among them)."""
    found = []
    for item in kube.list_watched(api.KIND, llm.namespace):
        try:
            found.append(api.LLMDeployment.model_validate(item))
        except ValueError:
            continue
    return found


def sync(
    kube: Kube,
    planned: cache.CachePlan | cache.CacheRefusal,
    applied: list[str],
    events: list[status.EventSpec],
) -> tuple[status.CacheObserved, status.CacheState]:
    """Create the cache's PVC and Job when absent (never re-applied: their specs are immutable and shared),
    keep its reclaim decision current, and read back what the download is doing."""
    if isinstance(planned, cache.CacheRefusal):
        refused = status.CacheObserved(claim="", pvc=None, job=None, refusal=(planned.reason, planned.message))
        return refused, status.cache_state(refused)
    ns, name = planned.namespace, planned.name
    pvc, job = kube.get_cache(ns, name)
    bound = (pvc or {}).get("status", {}).get("phase") == "Bound"
    problem = None
    if planned.storage_class_name and not bound:
        problem = kube.storage_class_problem(planned.storage_class_name)
    if pvc is None and problem is None:
        pvc = _create(kube, cache.pvc(planned), applied, events, "CreatedCache", (
            f"Created PVC {name} ({planned.size}, {planned.access_mode}, storage class "
            f"{planned.storage_class_name or 'cluster default'}) for {planned.uri}@{planned.revision}"))
    elif pvc is not None:
        reclaim = (pvc["metadata"].get("annotations") or {}).get(cache.RECLAIM_ANNOTATION)
        if reclaim != planned.reclaim:
            kube.annotate_claim(ns, name, {cache.RECLAIM_ANNOTATION: planned.reclaim})
    if job is None and pvc is not None:
        job = _create(kube, cache.job(planned), applied, events, "CreatedDownloadJob", (
            f"Created Job {name}: downloads {planned.repo}@{planned.revision} into PVC {name} with {planned.image}"))
    pods = kube.list_cache_pods(ns, f"{cache.CACHE_LABEL}={planned.key}") if job is not None else []
    observed = status.CacheObserved(name, pvc, job, pods, planned.expected_bytes, problem)
    return observed, status.cache_state(observed)


def _create(
    kube: Kube, obj: dict[str, Any], applied: list[str], events: list[status.EventSpec], reason: str, message: str
) -> dict[str, Any] | None:
    """Create a PVC or Job and say so; when another user's reconcile was first, the existing one."""
    created = kube.create(obj)
    if created is None:
        pvc, job = kube.get_cache(obj["metadata"]["namespace"], obj["metadata"]["name"])
        return job if obj["kind"] == "Job" else pvc
    applied.append(obj["kind"])
    events.append(status.EventSpec("Normal", reason, message))
    return created
