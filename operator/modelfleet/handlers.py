"""kopf wiring only: events on LLMDeployments and their children -> `reconcile`, plus the autoscaler loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import kopf
from prometheus_client import Counter
from pydantic import ValidationError

from modelfleet import api, reconcile
from modelfleet.kube import KubeError
from modelfleet.runtime import RUNTIME
from modelfleet.status import pod_problem

log = logging.getLogger(__name__)
RESYNC_ROUNDS = Counter("modelfleet_resync_rounds", "Completed resync rounds over all LLMDeployments")
RECONCILES = Counter("modelfleet_reconciles", "Reconciles of LLMDeployments, by outcome", ["outcome"])
LLM = (api.GROUP, api.VERSION, api.PLURAL)
CHILD_LABELS = {api.DEPLOYMENT_LABEL: kopf.PRESENT}
# kopf serialises handlers per object, but child events run beside them: without a lock two
# reconciles of one object could both announce the same transition.
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping under our prefix and let us post our own, meaningful Events."""
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.execution.max_workers = 8
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 300
    RUNTIME.start(resync_forever())


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    """Stop the autoscaler loop with the operator."""
    await RUNTIME.stop()


def _lock(namespace: str, name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((namespace, name), threading.Lock())


def _reconcile(namespace: str, name: str, body: dict[str, Any] | None) -> reconcile.Result | None:
    """Reconcile one object at a time (body None: read it fresh first) and count the outcome."""
    try:
        with _lock(namespace, name):
            if body is None:
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


def _run(body: kopf.Body) -> None:
    """Reconcile, mapping failures onto kopf's retry semantics."""
    try:
        _reconcile(body["metadata"]["namespace"], body["metadata"]["name"], dict(body))
    except ValidationError as exc:
        # The CRD should have refused this; retrying cannot help until the spec changes.
        raise kopf.PermanentError(f"invalid spec: {exc.errors()[0].get('msg')}") from exc
    except KubeError as exc:
        if exc.retryable:
            raise kopf.TemporaryError(str(exc), delay=5 if exc.status == 409 else 15) from exc
        raise kopf.PermanentError(str(exc)) from exc


@kopf.on.resume(*LLM)
@kopf.on.create(*LLM)
@kopf.on.update(*LLM, field="spec")
def on_spec(body: kopf.Body, **_: Any) -> None:
    """A new or changed spec (or an operator restart): converge children and status."""
    _run(body)


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
                await asyncio.to_thread(_reconcile, meta["namespace"], meta["name"], view.llm)
            except (KubeError, ValidationError) as exc:
                log.warning("resync of %s/%s failed, next round retries: %s", meta["namespace"], meta["name"], exc)
        RESYNC_ROUNDS.inc()


@kopf.on.event(*LLM)
def track(event: kopf.RawEvent, **_: Any) -> None:
    """Keep the in-memory view the autoscaler reads (no API calls)."""
    RUNTIME.registry.observe_llm(event)


@kopf.on.event("apps", "v1", "deployments", labels=CHILD_LABELS)
def child_changed(event: kopf.RawEvent, **_: Any) -> None:
    """A child Deployment changed (pods became ready, a rollout moved): refresh the owner's status."""
    obj = event["object"]
    RUNTIME.registry.observe_deployment(event)
    _refresh_owner(obj)


@kopf.on.event("", "v1", "pods", labels=CHILD_LABELS)
def pod_changed(event: kopf.RawEvent, **_: Any) -> None:
    """Track model pods for the autoscaler; when one gets stuck (no GPUs, crash loop) say so in status now."""
    previous = RUNTIME.registry.observe_pod(event)
    pod = dict(event["object"])
    if event["type"] != "DELETED" and _stuck(pod) and (previous is None or not _stuck(previous)):
        _refresh_owner(pod)


def _stuck(pod: dict[str, Any]) -> bool:
    return pod_problem([pod]) is not None


def _refresh_owner(child: Any) -> None:
    meta = child.get("metadata", {})
    name = (meta.get("labels") or {}).get(api.DEPLOYMENT_LABEL)
    if not name:
        return
    try:
        _reconcile(meta["namespace"], name, None)
    except (KubeError, ValidationError) as exc:
        # Event handlers are not retried; the periodic resync catches up.
        log.warning("could not refresh %s/%s after a child change: %s", meta.get("namespace"), name, exc)
