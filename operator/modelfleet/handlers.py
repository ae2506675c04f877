"""kopf wiring only: events on LLMDeployments -> `sync`, and the background loops.

Child Deployments, Services and pods are not watched through kopf (its label filter runs on the
client, so it would stream every pod of the cluster into the operator): informer.py watches them with
a server-side label selector, started with the other loops by RUNTIME.start.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from modelfleet import api, cache, sync
from modelfleet.kube import KubeError
from modelfleet.runtime import RUNTIME
from modelfleet.supervise import backoff

log = logging.getLogger(__name__)
LLM = (api.GROUP, api.VERSION, api.PLURAL)
#: How long kopf's start waits for the child watches' first LIST; reconciles ask the API until then.
CACHE_SYNC_SECONDS = 60


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's bookkeeping under our prefix and let us post our own, meaningful Events."""
    settings.persistence.finalizer = f"{api.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False
    settings.execution.max_workers = RUNTIME.settings.max_concurrent_reconciles
    # Every kopf API call is bounded too: a half-open connection fails the call, kopf retries.
    timeouts = RUNTIME.settings
    settings.networking.connect_timeout = timeouts.api_connect_timeout_seconds
    settings.networking.request_timeout = 30
    settings.watching.connect_timeout = timeouts.api_connect_timeout_seconds
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330  # the server ends a watch at 300 s; a silent one is dead by 330 s
    RUNTIME.start()
    if not await RUNTIME.synced(CACHE_SYNC_SECONDS):
        log.warning("child watches have not listed within %ss; reconciles read from the API until they do",
                    CACHE_SYNC_SECONDS)


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
async def track(event: kopf.RawEvent, **_: Any) -> None:
    """Keep the in-memory view the autoscaler reads (no API calls); a deletion prunes what we keep for it.

    On the event loop, not in kopf's executor: it only files a dict, and a rollout brings thousands of
    these events, each of which would otherwise wait for a worker thread shared with the reconciles."""
    if RUNTIME.registry.observe_llm(event):
        meta = event["object"]["metadata"]
        sync.forget(meta["namespace"], meta["name"])


@kopf.on.event("batch", "v1", "jobs", labels={cache.CACHE_LABEL: kopf.PRESENT})
def cache_job_changed(event: kopf.RawEvent, **_: Any) -> None:
    """A model-cache download Job moved (started, finished, failed): queue every LLMDeployment using it."""
    meta = event["object"]["metadata"]
    key, namespace = (meta.get("labels") or {}).get(cache.CACHE_LABEL, ""), meta["namespace"]
    bodies = [view.llm for view in RUNTIME.registry.snapshot()]
    for name in cache.users(bodies, namespace, key, RUNTIME.settings.cache):
        RUNTIME.queue.add((namespace, name))
