"""Driving reconciles: one at a time per object, at most `max_concurrent_reconciles` at once, counted; a
level-based resync of every object from the watch cache; child watch events into a work queue; and the
periodic rebuild of the registry's LLMDeployments from a fresh LIST.

Reads come from the registry (the watch cache) once the child watches have listed: a no-op reconcile
sends nothing to the API server. Each reconcile takes the object's newest known body at the moment it
runs, and records what its own writes returned, so the next one does not start from a stale body.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from modelfleet import api, cache, reconcile
from modelfleet.kube import KubeError
from modelfleet.registry import DEPLOYMENT, LLM, POD, namespace_matcher, older
from modelfleet.runtime import RUNTIME
from modelfleet.status import pod_problem

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
BUSY_REQUEUE_SECONDS = 0.5
_SLOTS: list[threading.BoundedSemaphore] = []  # one, made from the settings on first use
_POOL: list[ThreadPoolExecutor] = []


def _slots() -> threading.BoundedSemaphore:
    """At most `max_concurrent_reconciles` reconciles at once, whoever asks (kopf, child events, resync)."""
    with _LOCKS_GUARD:
        if not _SLOTS:
            _SLOTS.append(threading.BoundedSemaphore(RUNTIME.settings.max_concurrent_reconciles))
        return _SLOTS[0]


def _pool() -> ThreadPoolExecutor:
    with _LOCKS_GUARD:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(RUNTIME.settings.max_concurrent_reconciles, thread_name_prefix="resync"))
        return _POOL[0]


class Busy(KubeError):
    """Another reconcile of the same object holds its lock for too long; retry later."""

    def __init__(self, namespace: str, name: str, waited: float) -> None:
        super().__init__(f"{namespace}/{name}: another reconcile still runs after {waited:.0f}s", None, True)


def lock_wait_seconds() -> float:
    """How long a reconcile waits for its object's lock: about one reconcile's worth of timed-out calls."""
    settings = RUNTIME.settings
    return float(3 * (settings.api_connect_timeout_seconds + settings.api_read_timeout_seconds))


def _lock_of(namespace: str, name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((namespace, name), threading.Lock())


@contextmanager
def _locked(namespace: str, name: str, wait: float) -> Iterator[None]:
    lock = _lock_of(namespace, name)
    if not lock.acquire(timeout=wait):
        raise Busy(namespace, name, wait)
    try:
        yield
    finally:
        lock.release()


@contextmanager
def turn(namespace: str, name: str, wait: float) -> Iterator[None]:
    """The object's reconcile lock for a writer beside the reconciler (the autoscaler's status write): taken
    when it frees up within `wait`, else the write goes ahead without it (its resourceVersion still guards it)."""
    lock = _lock_of(namespace, name)
    held = lock.acquire(timeout=wait)
    try:
        yield
    finally:
        if held:
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


def freshest(given: dict[str, Any] | None, cached: dict[str, Any] | None) -> dict[str, Any] | None:
    """The newer of a handler's body and the registry's copy (ours may hold our own last write)."""
    if given is None:
        return cached
    if cached is None or older(cached, given):
        return given
    return cached


def _fresh_from_api(namespace: str, name: str) -> dict[str, Any] | None:
    body = RUNTIME.kube.get_llm(namespace, name)
    if body is not None:
        RUNTIME.registry.record(LLM, body)
    return body


def _reconcile(body: dict[str, Any]) -> reconcile.Result:
    return reconcile.reconcile(body, RUNTIME.kube, cache_defaults=RUNTIME.settings.cache, reader=RUNTIME.reader())


def reconcile_one(
    namespace: str, name: str, body: dict[str, Any] | None, wait: float | None = None
) -> reconcile.Result | None:
    """Reconcile one object at a time, from its newest known body, and count the outcome.

    `body` None: take the registry's copy (nothing is done for an object the registry does not know).
    Nothing is done for an object that is gone or being deleted: its children must not be re-applied.
    `wait` bounds the wait for a reconcile of the same object already running (default: lock_wait_seconds).
    """
    try:
        with _locked(namespace, name, lock_wait_seconds() if wait is None else wait), _slots():
            body = freshest(body, RUNTIME.registry.get_llm(namespace, name))
            if _gone(body):
                return None
            assert body is not None
            try:
                result = _reconcile(body)
            except KubeError as exc:
                # Someone wrote the object since this body (the autoscaler, kopf's annotations): read it
                # fresh and try once more instead of failing into a retry loop.
                if exc.status != 409:
                    raise
                CONFLICTS.inc()
                body = _fresh_from_api(namespace, name)
                if _gone(body):
                    return None
                assert body is not None
                result = _reconcile(body)
    except Busy:
        raise  # not a failure: the reconcile already running covers it
    except Exception:
        RECONCILES.labels("error").inc()
        raise
    RECONCILES.labels("changed" if result.applied or result.status_patch else "unchanged").inc()
    if result.applied or result.status_patch:
        log.info("reconciled %s/%s: applied=%s status=%s", namespace, name, result.applied, sorted(result.status_patch))
    return result


def refresh(key: Hashable) -> None:
    """The work queue's job: reconcile one owner after its children changed; failures wait for the resync."""
    namespace, name = str(key[0]), str(key[1])  # type: ignore[index]
    try:
        # Do not park a worker behind a reconcile of the same object that is already running (kopf's
        # handler, the resync): queue the key again for a moment later, when that one is done.
        reconcile_one(namespace, name, None, wait=1)
    except Busy:
        timer = threading.Timer(BUSY_REQUEUE_SECONDS, RUNTIME.queue.add, ((namespace, name),))
        timer.daemon = True
        timer.start()
    except (KubeError, ValidationError) as exc:
        log.warning("could not refresh %s/%s after a child change: %s", namespace, name, exc)


def _stuck(pod: dict[str, Any] | None) -> bool:
    return pod is not None and pod_problem([pod]) is not None


def on_child_event(kind: str, type_: str, obj: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """A child changed (the registry already holds it): queue its owner's reconcile when status may move.

    A Deployment change can move Ready/Progressing; a pod only matters when it gets stuck (no GPUs,
    crash loop), which status must say at once. Services are put right by the resync."""
    meta = obj.get("metadata") or {}
    owner = (meta.get("labels") or {}).get(api.DEPLOYMENT_LABEL)
    if not owner:
        return
    if kind == DEPLOYMENT or (kind == POD and type_ != "DELETED" and _stuck(obj) and not _stuck(previous)):
        RUNTIME.queue.add((str(meta.get("namespace", "")), str(owner)))


class RoundFailed(Exception):
    """Every object of a round failed: something systemic (the API server unreachable), not one bad object."""


async def resync_round() -> None:
    """Reconcile every known LLMDeployment once, in parallel (bounded), each from its registry body as it is
    when its turn comes; one object's failure does not stop the others. A no-op sends nothing."""
    keys = [
        (v.llm["metadata"]["namespace"], v.llm["metadata"]["name"])
        for v in RUNTIME.registry.snapshot()
        if not v.llm["metadata"].get("deletionTimestamp")
    ]
    loop = asyncio.get_running_loop()
    outcomes = await asyncio.gather(
        *(loop.run_in_executor(_pool(), reconcile_one, namespace, name, None) for namespace, name in keys),
        return_exceptions=True,
    )
    failures: list[str] = []
    for (namespace, name), outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, KubeError | ValidationError):
            failures.append(f"{namespace}/{name}: {outcome}")
            log.warning("resync of %s/%s failed, next round retries: %s", namespace, name, outcome)
        elif isinstance(outcome, BaseException):
            raise outcome
    try:
        await asyncio.to_thread(reclaim_caches)
    except KubeError as exc:
        log.warning("reclaiming unused model caches failed, next round retries: %s", exc)
    RESYNC_ROUNDS.inc()
    if keys and len(failures) == len(keys):
        raise RoundFailed(f"all {len(keys)} reconciles failed; first: {failures[0]}"[:600])


def list_scope() -> list[str | None]:
    """Namespaces to LIST: each named one, or all (None) when watching everything or by glob."""
    names = RUNTIME.settings.namespaces
    if not names or any(ch in n for n in names for ch in "*?[!"):
        return [None]
    return list(names)


async def relist_round() -> None:
    """Rebuild the registry's LLMDeployments from a fresh LIST (kopf's watch never says what vanished while
    it was gone); the child kinds are relisted by their own informers."""
    kube, registry = RUNTIME.kube, RUNTIME.registry
    match = namespace_matcher(RUNTIME.settings.namespaces)
    mark = registry.mark()
    listed: list[tuple[str, dict[str, Any]]] = []
    for namespace in list_scope():
        items = await asyncio.to_thread(kube.list_watched, "LLMDeployment", namespace)
        listed += [(LLM, obj) for obj in items if match(str(obj.get("metadata", {}).get("namespace", "")))]
    removed = registry.replace_from_list(mark, listed, kinds=[LLM])
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
    for scope in list_scope():
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
