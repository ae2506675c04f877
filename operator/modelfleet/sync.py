"""Driving reconciles: one at a time per object, counted; a level-based resync of every object; and the
periodic rebuild of the registry from a fresh LIST."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from modelfleet import api, cache, reconcile
from modelfleet.kube import KubeError
from modelfleet.registry import DEPLOYMENT, LLM, POD, REPLICASET, namespace_matcher
from modelfleet.runtime import RUNTIME

log = logging.getLogger(__name__)
RESYNC_ROUNDS = Counter("modelfleet_resync_rounds", "Completed resync rounds over all LLMDeployments")
CONFLICTS = Counter("modelfleet_reconcile_conflicts", "Reconciles retried at once on a fresh body after a 409")
RECONCILES = Counter("modelfleet_reconciles", "Reconciles of LLMDeployments, by outcome", ["outcome"])
REGISTRY_SIZE = Gauge("modelfleet_registry_objects", "Objects held in the in-memory registry", ["kind"])
GHOSTS = Counter("modelfleet_registry_ghosts_removed", "Objects a relist found gone that no watch event had removed")
# kopf serialises handlers per object, but child events and the resync run beside them: without a
# lock two reconciles of one object could both announce the same transition. The wait is bounded:
# every API call inside has a read timeout, and a reconcile that cannot get the lock in time gives
# up (retryable) rather than parking a worker behind a stuck one.
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class Busy(KubeError):
    """Another reconcile of the same object holds its lock for too long; retry later."""

    def __init__(self, namespace: str, name: str, waited: float) -> None:
        super().__init__(f"{namespace}/{name}: another reconcile still runs after {waited:.0f}s", None, True)


def lock_wait_seconds() -> float:
    """How long a reconcile waits for its object's lock: about one reconcile's worth of timed-out calls."""
    settings = RUNTIME.settings
    return float(3 * (settings.api_connect_timeout_seconds + settings.api_read_timeout_seconds))


@contextmanager
def _locked(namespace: str, name: str, wait: float) -> Iterator[None]:
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault((namespace, name), threading.Lock())
    if not lock.acquire(timeout=wait):
        raise Busy(namespace, name, wait)
    try:
        yield
    finally:
        lock.release()


def forget(namespace: str, name: str) -> None:
    """A deleted LLMDeployment: drop its lock and its metric series (its registry entries go with the event)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get((namespace, name))
        if lock is not None and not lock.locked():
            del _LOCKS[(namespace, name)]
    from modelfleet.autoscaler.loop import default_metrics

    default_metrics().forget(namespace, name)


def _gone(body: dict[str, Any] | None) -> bool:
    return body is None or bool(body["metadata"].get("deletionTimestamp"))


def reconcile_one(
    namespace: str, name: str, body: dict[str, Any] | None, wait: float | None = None
) -> reconcile.Result | None:
    """Reconcile one object at a time (body None: read it fresh first) and count the outcome.

    Nothing is done for an object that is gone or being deleted: its children must not be re-applied.
    `wait` bounds the wait for a reconcile of the same object already running (default: lock_wait_seconds).
    """
    try:
        with _locked(namespace, name, lock_wait_seconds() if wait is None else wait):
            if body is None:
                body = RUNTIME.kube.get_llm(namespace, name)
            if _gone(body):
                return None
            assert body is not None
            try:
                result = reconcile.reconcile(body, RUNTIME.kube, cache_defaults=RUNTIME.settings.cache)
            except KubeError as exc:
                # The body was older than the object (our own last status write, not yet seen in the
                # watch): read it fresh and try once more instead of failing into a retry loop.
                if exc.status != 409:
                    raise
                CONFLICTS.inc()
                body = RUNTIME.kube.get_llm(namespace, name)
                if _gone(body):
                    return None
                assert body is not None
                result = reconcile.reconcile(body, RUNTIME.kube, cache_defaults=RUNTIME.settings.cache)
    except Exception:
        RECONCILES.labels("error").inc()
        raise
    RECONCILES.labels("changed" if result.applied or result.status_patch else "unchanged").inc()
    if result.applied or result.status_patch:
        log.info("reconciled %s/%s: applied=%s status=%s", namespace, name, result.applied, sorted(result.status_patch))
    return result


class RoundFailed(Exception):
    """Every object of a round failed: something systemic (the API server unreachable), not one bad object."""


async def resync_round() -> None:
    """Reconcile every known LLMDeployment once, from a fresh read of it (the registry's copy may be a
    deleted object's ghost); one object's failure does not stop the others. A no-op writes nothing."""
    keys = [
        (v.llm["metadata"]["namespace"], v.llm["metadata"]["name"])
        for v in RUNTIME.registry.snapshot()
        if not v.llm["metadata"].get("deletionTimestamp")
    ]
    failures: list[str] = []
    for namespace, name in keys:
        try:
            await asyncio.to_thread(reconcile_one, namespace, name, None)
        except (KubeError, ValidationError) as exc:
            failures.append(f"{namespace}/{name}: {exc}")
            log.warning("resync of %s/%s failed, next round retries: %s", namespace, name, exc)
    try:
        await asyncio.to_thread(reclaim_caches)
    except KubeError as exc:
        log.warning("reclaiming unused model caches failed, next round retries: %s", exc)
    RESYNC_ROUNDS.inc()
    if keys and len(failures) == len(keys):
        raise RoundFailed(f"all {len(keys)} reconciles failed; first: {failures[0]}"[:600])


def _list_scope() -> list[str | None]:
    """Namespaces to LIST: each named one, or all (None) when watching everything or by glob."""
    names = RUNTIME.settings.namespaces
    if not names or any(ch in n for n in names for ch in "*?[!"):
        return [None]
    return list(names)


async def relist_round() -> None:
    """Rebuild the registry from a fresh LIST of LLMDeployments, child Deployments and model pods."""
    kube, registry = RUNTIME.kube, RUNTIME.registry
    match = namespace_matcher(RUNTIME.settings.namespaces)
    mark = registry.mark()
    listed: list[tuple[str, dict[str, Any]]] = []
    for namespace in _list_scope():
        for kind, api_kind in ((LLM, "LLMDeployment"), (DEPLOYMENT, "Deployment"), (REPLICASET, "ReplicaSet"),
                               (POD, "Pod")):
            items = await asyncio.to_thread(kube.list_watched, api_kind, namespace)
            listed += [(kind, obj) for obj in items if match(str(obj.get("metadata", {}).get("namespace", "")))]
    removed = registry.replace_from_list(mark, listed)
    for namespace, name in removed:
        log.info("registry: %s/%s is gone (no watch event said so); forgetting it", namespace, name)
        GHOSTS.inc()
        forget(namespace, name)
    for kind, count in registry.size().items():
        REGISTRY_SIZE.labels(kind).set(count)


def reclaim_caches() -> list[tuple[str, str]]:
    """Delete the model caches (PVC + Job) whose users are all gone and asked for `reclaim: Delete`.

    Level-based, from a fresh LIST of LLMDeployments (never the registry, which may not have caught up): a
    cache deleted while the operator was down is found on the next round.
    """
    kube, match = RUNTIME.kube, namespace_matcher(RUNTIME.settings.namespaces)
    selector = cache.CACHE_LABEL  # the label's presence
    claims: dict[str, list[dict[str, Any]]] = {}
    for scope in _list_scope():
        for claim in kube.list_cache_claims(scope, selector):
            meta = claim["metadata"]
            if match(meta["namespace"]) and (meta.get("annotations") or {}).get(cache.RECLAIM_ANNOTATION) == "Delete":
                claims.setdefault(meta["namespace"], []).append(claim)
    deleted = []
    for namespace, found in claims.items():
        try:
            llms = [api.LLMDeployment.model_validate(item) for item in kube.list_watched(api.KIND, namespace)]
        except ValidationError:
            continue  # an LLMDeployment we cannot read may be a user: delete nothing in its namespace
        for name in cache.reclaimable(found, llms, RUNTIME.settings.cache):
            log.info("model cache %s/%s has no users left and reclaim is Delete: deleting its Job and PVC",
                     namespace, name)
            kube.delete_cache(namespace, name)
            deleted.append((namespace, name))
    return deleted
