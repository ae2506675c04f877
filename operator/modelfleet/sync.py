"""Driving reconciles: one at a time per object, counted, and a level-based resync of every object."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from prometheus_client import Counter
from pydantic import ValidationError

from modelfleet import reconcile
from modelfleet.kube import KubeError
from modelfleet.runtime import RUNTIME

log = logging.getLogger(__name__)
RESYNC_ROUNDS = Counter("modelfleet_resync_rounds", "Completed resync rounds over all LLMDeployments")
CONFLICTS = Counter("modelfleet_reconcile_conflicts", "Reconciles retried at once on a fresh body after a 409")
RECONCILES = Counter("modelfleet_reconciles", "Reconciles of LLMDeployments, by outcome", ["outcome"])
# kopf serialises handlers per object, but child events and the resync run beside them: without a
# lock two reconciles of one object could both announce the same transition.
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(namespace: str, name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((namespace, name), threading.Lock())


def reconcile_one(namespace: str, name: str, body: dict[str, Any] | None) -> reconcile.Result | None:
    """Reconcile one object at a time (body None: read it fresh first) and count the outcome."""
    try:
        with _lock(namespace, name):
            if body is None:
                body = RUNTIME.kube.get_llm(namespace, name)
                if body is None or body["metadata"].get("deletionTimestamp"):
                    return None
            try:
                result = reconcile.reconcile(body, RUNTIME.kube)
            except KubeError as exc:
                # The body was older than the object (our own last status write, not yet seen in the
                # watch): read it fresh and try once more instead of failing into a retry loop.
                if exc.status != 409:
                    raise
                CONFLICTS.inc()
                body = RUNTIME.kube.get_llm(namespace, name)
                if body is None or body["metadata"].get("deletionTimestamp"):
                    return None
                result = reconcile.reconcile(body, RUNTIME.kube)
    except Exception:
        RECONCILES.labels("error").inc()
        raise
    RECONCILES.labels("changed" if result.applied or result.status_patch else "unchanged").inc()
    if result.applied or result.status_patch:
        log.info("reconciled %s/%s: applied=%s status=%s", namespace, name, result.applied, sorted(result.status_patch))
    return result


async def resync_forever() -> None:
    """Level-based resync of every known LLMDeployment, one at a time: repairs drift (a deleted child) and
    notices stuck pods; a no-op writes nothing. A plain task, not a kopf timer: kopf puts a finalizer on
    every object that has a timer, and an uninstalled operator would then block each deletion."""
    interval = RUNTIME.settings.resync_seconds
    while True:
        await asyncio.sleep(interval)
        for view in RUNTIME.registry.snapshot():
            meta = view.llm["metadata"]
            if meta.get("deletionTimestamp"):
                continue
            try:
                await asyncio.to_thread(reconcile_one, meta["namespace"], meta["name"], view.llm)
            except (KubeError, ValidationError) as exc:
                log.warning("resync of %s/%s failed, next round retries: %s", meta["namespace"], meta["name"], exc)
        RESYNC_ROUNDS.inc()
