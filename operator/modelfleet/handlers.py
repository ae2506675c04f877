"""kopf wiring only: events on LLMDeployments and their children -> `sync`, and the background loops."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from modelfleet import api, cache, sync
from modelfleet.kube import KubeError
from modelfleet.runtime import RUNTIME
from modelfleet.status import pod_problem
from modelfleet.supervise import backoff

log = logging.getLogger(__name__)
LLM = (api.GROUP, api.VERSION, api.PLURAL)
CHILD_LABELS = {api.DEPLOYMENT_LABEL: kopf.PRESENT}


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
    # Every kopf API call is bounded too: a half-open connection fails the call, kopf retries.
    timeouts = RUNTIME.settings
    settings.networking.connect_timeout = timeouts.api_connect_timeout_seconds
    settings.networking.request_timeout = 30
    settings.watching.connect_timeout = timeouts.api_connect_timeout_seconds
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330  # the server ends a watch at 300 s; a silent one is dead by 330 s
    RUNTIME.start()


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    """Stop the resync and autoscaler loops with the operator."""
    await RUNTIME.stop()


def _run(body: kopf.Body, retry: int) -> None:
    """Reconcile, mapping failures onto kopf's retry semantics (retries back off with jitter, capped)."""
    try:
        sync.reconcile_one(body["metadata"]["namespace"], body["metadata"]["name"], dict(body))
    except ValidationError as exc:
        # The CRD should have refused this; retrying cannot help until the spec changes.
        raise kopf.PermanentError(f"invalid spec: {exc.errors()[0].get('msg')}") from exc
    except KubeError as exc:
        if exc.retryable:
            raise kopf.TemporaryError(str(exc), delay=backoff(retry + 1, 2 if exc.status == 409 else 5, 120)) from exc
        # Refused children are reported by reconcile itself (condition + Event); this is anything else.
        raise kopf.PermanentError(str(exc)) from exc


@kopf.on.resume(*LLM)
@kopf.on.create(*LLM)
@kopf.on.update(*LLM, field="spec")
def on_spec(body: kopf.Body, retry: int, **_: Any) -> None:
    """A new or changed spec (or an operator restart): converge children and status."""
    _run(body, retry)


@kopf.on.event(*LLM)
def track(event: kopf.RawEvent, **_: Any) -> None:
    """Keep the in-memory view the autoscaler reads (no API calls); a deletion prunes what we keep for it."""
    if RUNTIME.registry.observe_llm(event):
        meta = event["object"]["metadata"]
        sync.forget(meta["namespace"], meta["name"])


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


@kopf.on.event("apps", "v1", "replicasets", labels=CHILD_LABELS)
def replicaset_changed(event: kopf.RawEvent, **_: Any) -> None:
    """Track model ReplicaSets: they link pods to the operator's Deployment (no API calls)."""
    RUNTIME.registry.observe_replicaset(event)


@kopf.on.event("batch", "v1", "jobs", labels={cache.CACHE_LABEL: kopf.PRESENT})
def cache_job_changed(event: kopf.RawEvent, **_: Any) -> None:
    """A model-cache download Job moved (started, finished, failed): refresh every LLMDeployment using it."""
    meta = event["object"]["metadata"]
    key, namespace = (meta.get("labels") or {}).get(cache.CACHE_LABEL, ""), meta["namespace"]
    bodies = [view.llm for view in RUNTIME.registry.snapshot()]
    for name in cache.users(bodies, namespace, key, RUNTIME.settings.cache):
        _refresh_owner({"metadata": {"namespace": namespace, "labels": {api.DEPLOYMENT_LABEL: name}}})


def _stuck(pod: dict[str, Any]) -> bool:
    return pod_problem([pod]) is not None


def _refresh_owner(child: Any) -> None:
    meta = child.get("metadata", {})
    name = (meta.get("labels") or {}).get(api.DEPLOYMENT_LABEL)
    if not name:
        return
    try:
        # Do not park one of kopf's few workers behind a reconcile of the same object that is already
        # running; if that one read too early, the next resync catches up.
        sync.reconcile_one(meta["namespace"], name, None, wait=5)
    except (KubeError, ValidationError) as exc:
        # Event handlers are not retried; the periodic resync catches up.
        log.warning("could not refresh %s/%s after a child change: %s", meta.get("namespace"), name, exc)
