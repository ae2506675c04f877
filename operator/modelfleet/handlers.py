"""kopf wiring only: events on LLMDeployments and their children -> `reconcile`, plus the autoscaler loop."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from modelfleet import api, reconcile
from modelfleet.kube import Kube, KubeError
from modelfleet.runtime import RUNTIME

log = logging.getLogger(__name__)
LLM = {"group": api.GROUP, "version": api.VERSION, "plural": api.PLURAL}
CHILD = {"labels": {api.DEPLOYMENT_LABEL: kopf.PRESENT}}


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
    RUNTIME.start()


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    """Stop the autoscaler loop with the operator."""
    await RUNTIME.stop()


def _run(body: kopf.Body) -> None:
    """Reconcile, mapping failures onto kopf's retry semantics."""
    try:
        result = reconcile.reconcile(dict(body), RUNTIME.kube)
    except ValidationError as exc:
        # The CRD should have refused this; retrying cannot help until the spec changes.
        raise kopf.PermanentError(f"invalid spec: {exc.errors()[0].get('msg')}") from exc
    except KubeError as exc:
        if exc.retryable:
            raise kopf.TemporaryError(str(exc), delay=5 if exc.status == 409 else 15) from exc
        raise kopf.PermanentError(str(exc)) from exc
    if result.applied or result.status_patch:
        log.info("reconciled %s/%s: applied=%s status=%s", body["metadata"]["namespace"],
                 body["metadata"]["name"], result.applied, sorted(result.status_patch))


@kopf.on.resume(**LLM)
@kopf.on.create(**LLM)
@kopf.on.update(**LLM, field="spec")
def on_spec(body: kopf.Body, **_: Any) -> None:
    """A new or changed spec (or an operator restart): converge children and status."""
    _run(body)


@kopf.timer(**LLM, interval=60, initial_delay=30)
def resync(body: kopf.Body, **_: Any) -> None:
    """Level-based resync: repairs drift (a deleted child) and notices stuck pods; no-op writes nothing."""
    _run(body)


@kopf.on.event(**LLM)
def track(event: kopf.RawEvent, **_: Any) -> None:
    """Keep the in-memory view the autoscaler reads (no API calls)."""
    RUNTIME.registry.observe_llm(event)


@kopf.on.event("apps", "v1", "deployments", **CHILD)
def child_changed(event: kopf.RawEvent, **_: Any) -> None:
    """A child Deployment changed (pods became ready, a rollout moved): refresh the owner's status."""
    obj = event["object"]
    RUNTIME.registry.observe_deployment(event)
    _refresh_owner(obj)


@kopf.on.event("", "v1", "pods", **CHILD, when=lambda body, **_: _pod_stuck(body))
def pod_stuck(body: kopf.Body, **_: Any) -> None:
    """A model pod cannot be scheduled or its container is stuck: say so in the owner's status now."""
    _refresh_owner(body)


def _pod_stuck(body: Any) -> bool:
    from modelfleet.status import pod_problem

    return pod_problem([dict(body)]) is not None


def _refresh_owner(child: Any) -> None:
    meta = child.get("metadata", {})
    name = (meta.get("labels") or {}).get(api.DEPLOYMENT_LABEL)
    if not name:
        return
    kube: Kube = RUNTIME.kube
    try:
        owner = kube.get_llm(meta["namespace"], name)
        if owner is not None and not owner["metadata"].get("deletionTimestamp"):
            reconcile.reconcile(owner, kube)
    except (KubeError, ValidationError) as exc:
        # Event handlers are not retried; the periodic resync catches up.
        log.warning("could not refresh %s/%s after a child change: %s", meta.get("namespace"), name, exc)
