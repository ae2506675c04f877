"""The only package that calls the Kubernetes API (base.py: plumbing; cache.py, lease.py: their calls).

Writes are server-side applies with field manager `modelfleet`, or merge patches on the
status and scale subresources. Every request is counted in the operator's /metrics
(`modelfleet_kube_requests_total` by verb and resource), which tests and `bench/` read.

Every request carries `_request_timeout=(connect, read)`: a half-open connection fails the call
(KubeError, status 0, retryable) instead of parking the thread for good. urllib3 retries a failed
connect once with a short jittered back-off; everything else is retried by the caller's loop.
"""


from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client

from modelfleet import api
from modelfleet.kube.base import REQUEST_SECONDS as REQUEST_SECONDS
from modelfleet.kube.base import REQUESTS as REQUESTS
from modelfleet.kube.base import load_config as load_config
from modelfleet.kube.cache import CacheCalls
from modelfleet.kube.lease import LeaseCalls
from modelfleet.kubeerror import KubeError as KubeError
from modelfleet.kubeerror import unreachable as _unreachable
from modelfleet.paging import Expired, Page, collect, lines

log = logging.getLogger(__name__)


class Kube(CacheCalls, LeaseCalls):
    """A thin, counted client for the few calls the operator makes, each with connect and read timeouts."""

    # -- reads ---------------------------------------------------------------------------------
    def get_child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A Deployment or Service as a plain dict, or None when absent."""
        self._count("get", kind)
        read = self.apps.read_namespaced_deployment if kind == "Deployment" else self.core.read_namespaced_service
        result: dict[str, Any] | None = self._plain(
            self._call(f"reading {kind} {namespace}/{name}", read, name, namespace, missing_ok=True)
        )
        return result

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The pods of one LLMDeployment."""
        self._count("list", "Pod")
        pods = self._call(
            f"listing pods of {namespace}/{name}",
            self.core.list_namespaced_pod,
            namespace,
            label_selector=api.selector_string(name),
        )
        items: list[dict[str, Any]] = self._plain(pods).get("items", [])
        return items

    def get_llm(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One LLMDeployment, or None when it is gone."""
        self._count("get", api.KIND)
        obj: Any = self._call(
            f"reading {api.KIND} {namespace}/{name}",
            self.custom.get_namespaced_custom_object,
            api.GROUP,
            api.VERSION,
            namespace,
            api.PLURAL,
            name,
            missing_ok=True,
        )
        return None if obj is None else dict(obj)

    def _lister(self, kind: str, namespace: str | None) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """The list (and watch) call of a kind, namespaced or across all namespaces."""
        if kind == api.KIND:
            if namespace:
                return self.custom.list_namespaced_custom_object, (api.GROUP, api.VERSION, namespace, api.PLURAL)
            return self.custom.list_cluster_custom_object, (api.GROUP, api.VERSION, api.PLURAL)
        calls: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "Deployment": (self.apps.list_namespaced_deployment, self.apps.list_deployment_for_all_namespaces),
            "Pod": (self.core.list_namespaced_pod, self.core.list_pod_for_all_namespaces),
            "Service": (self.core.list_namespaced_service, self.core.list_service_for_all_namespaces),
            "ReplicaSet": (self.apps.list_namespaced_replica_set, self.apps.list_replica_set_for_all_namespaces),
        }
        namespaced, everywhere = calls[kind]
        return (namespaced, (namespace,)) if namespace else (everywhere, ())

    def list_page(
        self, kind: str, namespace: str | None, selector: str, continue_token: str = "", limit: int | None = None
    ) -> Page:
        """One page of a LIST filtered by label on the server, as plain JSON (no client-side models)."""
        self._count("list", kind)
        fn, args = self._lister(kind, namespace)
        where = namespace or "all namespaces"
        query: dict[str, Any] = {"limit": limit or self.page_size, "_preload_content": False}
        if selector:
            query["label_selector"] = selector
        if continue_token:
            query["_continue"] = continue_token
        try:
            resp = self._call(f"listing {kind}s in {where}", fn, *args, **query)
        except KubeError as exc:
            if exc.status == 410:
                raise Expired(str(exc)) from exc
            raise
        doc = json.loads(resp.data)
        meta = doc.get("metadata") or {}
        items = list(doc.get("items") or [])
        for item in items:  # a LIST's items carry no kind: without it every child would look drifted
            item.setdefault("apiVersion", doc.get("apiVersion"))
            item.setdefault("kind", kind)
        return Page(items, str(meta.get("resourceVersion", "")), str(meta.get("continue") or ""))

    def list_all(self, kind: str, namespace: str | None, selector: str) -> tuple[list[dict[str, Any]], str]:
        """Every object of a paginated LIST, and the resourceVersion to start a watch from."""
        return collect(lambda token: self.list_page(kind, namespace, selector, token))

    def watch(
        self, kind: str, namespace: str | None, selector: str, resource_version: str, seconds: int
    ) -> Iterator[dict[str, Any]]:
        """Watch events (`type`, `object` as plain JSON) after `resource_version`, for about `seconds`.

        Bookmarks are asked for, so an idle watch still learns a fresh resourceVersion. A 410 Gone
        arrives as an ERROR event (or a KubeError with status 410): the caller must LIST again.
        """
        self._count("watch", kind)
        fn, args = self._lister(kind, namespace)
        connect, read = self.timeout
        resp = self._call(
            f"watching {kind}s in {namespace or 'all namespaces'}",
            fn,
            *args,
            label_selector=selector,
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=seconds,
            _preload_content=False,
            timeout=(connect, seconds + read),  # the server ends the watch after `seconds`; silence beyond is death
        )
        try:
            for line in lines(resp):
                if line.strip():
                    yield json.loads(line)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unreachable(exc, f"watching {kind}s") from exc
        finally:
            resp.release_conn()

    def list_watched(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every LLMDeployment, or child Deployment/Pod/Service carrying our label, in `namespace` (None: all)."""
        return self.list_all(kind, namespace, "" if kind == api.KIND else api.DEPLOYMENT_LABEL)[0]

    # -- writes --------------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a Deployment or Service (create or update), forcing our fields."""
        kind, meta = obj["kind"], obj["metadata"]
        self._writing("apply", kind, f"applying {kind} {meta['namespace']}/{meta['name']}")
        patch = self.apps.patch_namespaced_deployment if kind == "Deployment" else self.core.patch_namespaced_service
        result = self._call(
            f"applying {kind} {meta['namespace']}/{meta['name']}",
            patch,
            meta["name"],
            meta["namespace"],
            obj,
            field_manager=api.FIELD_MANAGER,
            force=True,
            _content_type="application/apply-patch+yaml",
            _preload_content=False,  # plain JSON: no round trip through the client's model classes
        )
        applied: dict[str, Any] = json.loads(result.data)
        return applied

    def patch_status(
        self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None
    ) -> dict[str, Any]:
        """Merge-patch the LLMDeployment's status; with a resourceVersion it fails on a concurrent write (409).

        Returns the object as written (the caller's cache then knows its own write before the watch says so)."""
        self._writing("patch", f"{api.KIND}/status", f"writing status of {namespace}/{name}")
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        written: Any = self._call(
            f"writing status of {namespace}/{name}",
            self.custom.patch_namespaced_custom_object_status,
            api.GROUP,
            api.VERSION,
            namespace,
            api.PLURAL,
            name,
            body,
            field_manager=api.FIELD_MANAGER,
            _content_type="application/merge-patch+json",
            _preload_content=False,
        )
        return dict(json.loads(written.data))

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set a Deployment's replicas through its scale subresource (the autoscaler's one write)."""
        self._writing("patch", "Deployment/scale", f"scaling {namespace}/{name} to {replicas}")
        self._call(
            f"scaling {namespace}/{name} to {replicas}",
            self.apps.patch_namespaced_deployment_scale,
            name,
            namespace,
            {"spec": {"replicas": replicas}},
            field_manager=f"{api.FIELD_MANAGER}-autoscaler",
            _content_type="application/merge-patch+json",
        )

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Set annotations on one pod (pod-deletion-cost)."""
        self._writing("patch", "Pod", f"annotating pod {namespace}/{name}")
        self._call(
            f"annotating pod {namespace}/{name}",
            self.core.patch_namespaced_pod,
            name,
            namespace,
            {"metadata": {"annotations": annotations}},
            field_manager=api.FIELD_MANAGER,
            _content_type="application/merge-patch+json",
        )

    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about an LLMDeployment."""
        meta = owner["metadata"]
        try:
            self._writing("create", "Event", f"posting event {reason}")
        except KubeError as exc:
            log.warning("event %s on %s/%s not posted: %s", reason, meta["namespace"], meta["name"], exc)
            return
        now = dt.datetime.now(dt.UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=api.API_VERSION,
                kind=api.KIND,
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="modelfleet"),
            reporting_component="modelfleet.io/operator",
            reporting_instance="modelfleet",
        )
        if self._events is not None:  # off the reconcile's path: a rollout's Events must not slow it down
            self._events.submit(self._post_event, owner, body, reason)
        else:
            self._post_event(owner, body, reason)

    def _post_event(self, owner: dict[str, Any], body: Any, reason: str) -> None:
        meta = owner["metadata"]
        try:
            self._call(f"posting event {reason}", self.core.create_namespaced_event, meta["namespace"], body)
        except KubeError as exc:
            # An Event that cannot be posted must not fail the reconcile it describes; in a namespace
            # being deleted it has nobody left to tell.
            level = logging.DEBUG if exc.namespace_terminating else logging.WARNING
            log.log(level, "could not post event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], exc)
