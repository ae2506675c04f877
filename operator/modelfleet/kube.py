"""The only module that calls the Kubernetes API.

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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram

from modelfleet import api
from modelfleet.kubeerror import KubeError as KubeError
from modelfleet.kubeerror import from_api_exception as _wrap
from modelfleet.kubeerror import unreachable as _unreachable
from modelfleet.paging import Expired, Page, collect, lines
from modelfleet.ratelimit import TokenBucket

log = logging.getLogger(__name__)

REQUESTS = PromCounter(
    "modelfleet_kube_requests", "Requests the operator sent to the Kubernetes API", ["verb", "resource"]
)
REQUEST_SECONDS = Histogram(
    "modelfleet_kube_request_duration_seconds", "Duration of one Kubernetes API call, failed ones included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30),
)


# urllib3's retry for a refused or reset connection: once, after a short jittered pause.
_RETRY = urllib3.Retry(total=1, connect=1, read=0, status=0, backoff_factor=0.3, backoff_jitter=0.3, backoff_max=2)


def load_config() -> None:
    """In-cluster config when running in a pod, else the current kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


class Kube:
    """A thin, counted client for the few calls the operator makes, each with connect and read timeouts."""

    def __init__(
        self,
        api_client: client.ApiClient | None = None,
        timeout: tuple[float, float] = (5, 20),
        retry: bool = True,
        limiter: TokenBucket | None = None,
        page_size: int = 500,
        event_workers: int = 0,
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        if api_client is None:
            configuration = client.Configuration.get_default_copy()
            configuration.retries = _RETRY if retry else False
            # Room for every concurrent reconcile, the watches, the Event posters, the autoscaler and the
            # Lease: urllib3's default of 10 pooled connections would churn ("Connection pool is full").
            configuration.connection_pool_maxsize = 48
            api_client = client.ApiClient(configuration)
        self.api_client = api_client
        self.timeout = timeout
        self.limiter = limiter or TokenBucket(0, 1)  # default: unlimited (CLI tools, tests)
        self.page_size = page_size
        # event_workers > 0: Events are posted by a small pool in the background (the operator);
        # 0: at once, in the caller's thread (tools, tests).
        self._events = ThreadPoolExecutor(event_workers, thread_name_prefix="events") if event_workers else None
        # Leader election's gate (leader.py): while it says no, every write is refused before it is sent.
        self.may_write = may_write
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.coordination = client.CoordinationV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.storage = client.StorageV1Api(self.api_client)

    def _count(self, verb: str, resource: str) -> None:
        REQUESTS.labels(verb, resource).inc()

    def _writing(self, verb: str, resource: str, what: str) -> None:
        """Count a write, or refuse it (retryable) while this process is not sure it leads."""
        if self.may_write is not None and not self.may_write():
            raise KubeError(f"{what}: not sent: this operator is not sure it still leads (Lease not renewed)",
                            None, True)
        self._count(verb, resource)

    def _call(
        self,
        what: str,
        fn: Callable[..., Any],
        *args: Any,
        missing_ok: bool = False,
        limited: bool = True,
        timeout: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> Any:
        """One API call with our timeouts; every failure becomes a KubeError (None for a 404 when missing_ok).

        Every call but the Lease's waits for the client-side rate limit: a renewal stuck behind a
        rollout's queue would cost the leadership.
        """
        if limited:
            self.limiter.take()
        try:
            with REQUEST_SECONDS.time():  # failed calls too: a timeout is the latency that matters
                return fn(*args, _request_timeout=timeout or self.timeout, **kwargs)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise _wrap(exc, what) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _unreachable(exc, what) from exc

    def _plain(self, obj: Any) -> Any:
        return None if obj is None else self.api_client.sanitize_for_serialization(obj)

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

    # -- the shared model cache (cache.py): a PVC and a download Job without an owner ----------
    def get_cache(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The cache's PersistentVolumeClaim and Job (each None when absent)."""
        self._count("get", "PersistentVolumeClaim")
        pvc = self._call(f"reading PVC {namespace}/{name}", self.core.read_namespaced_persistent_volume_claim,
                         name, namespace, missing_ok=True)
        self._count("get", "Job")
        job = self._call(f"reading Job {namespace}/{name}", self.batch.read_namespaced_job, name, namespace,
                         missing_ok=True)
        return self._plain(pvc), self._plain(job)

    def list_cache_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """The download pods of one cache (label selector modelfleet.io/cache=<key>)."""
        self._count("list", "Pod")
        pods = self._call(f"listing download pods in {namespace}", self.core.list_namespaced_pod, namespace,
                          label_selector=selector)
        items: list[dict[str, Any]] = self._plain(pods).get("items", [])
        return items

    def list_cache_claims(self, namespace: str | None, selector: str) -> list[dict[str, Any]]:
        """The cache PVCs of a namespace (None: of all namespaces)."""
        self._count("list", "PersistentVolumeClaim")
        if namespace:
            found = self._call(f"listing cache PVCs in {namespace}", self.core.list_namespaced_persistent_volume_claim,
                               namespace, label_selector=selector)
        else:
            found = self._call("listing cache PVCs", self.core.list_persistent_volume_claim_for_all_namespaces,
                               label_selector=selector)
        items: list[dict[str, Any]] = self._plain(found).get("items", [])
        return items

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create a PVC or Job; None when it exists already (their specs are immutable: never re-applied)."""
        kind, meta = obj["kind"], obj["metadata"]
        what = f"creating {kind} {meta['namespace']}/{meta['name']}"
        self._writing("create", kind, what)
        create = (self.batch.create_namespaced_job if kind == "Job"
                  else self.core.create_namespaced_persistent_volume_claim)
        try:
            created: dict[str, Any] = self._plain(self._call(what, create, meta["namespace"], obj,
                                                             field_manager=api.FIELD_MANAGER))
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise
        return created

    def annotate_claim(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Merge annotations into a cache PVC (its reclaim decision follows its users)."""
        self._writing("patch", "PersistentVolumeClaim", f"annotating PVC {namespace}/{name}")
        self._call(f"annotating PVC {namespace}/{name}", self.core.patch_namespaced_persistent_volume_claim, name,
                   namespace, {"metadata": {"annotations": annotations}}, field_manager=api.FIELD_MANAGER,
                   _content_type="application/merge-patch+json")

    def delete_cache(self, namespace: str, name: str) -> None:
        """Delete a cache's Job (with its pods) and PVC; absent ones are fine."""
        for kind, delete in (("Job", self.batch.delete_namespaced_job),
                             ("PersistentVolumeClaim", self.core.delete_namespaced_persistent_volume_claim)):
            self._writing("delete", kind, f"deleting {kind} {namespace}/{name}")
            self._call(f"deleting {kind} {namespace}/{name}", delete, name, namespace,
                       propagation_policy="Background", missing_ok=True)

    def storage_class_problem(self, name: str) -> str | None:
        """The API server's message when StorageClass `name` does not exist, else None."""
        self._count("get", "StorageClass")
        try:
            self._call(f"reading StorageClass {name}", self.storage.read_storage_class, name)
        except KubeError as exc:
            if exc.status == 404:
                return exc.api_message
            raise
        return None

    # -- the leader-election Lease -------------------------------------------------------------
    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Lease as a plain dict, or None when it does not exist yet."""
        self._count("get", "Lease")
        lease: dict[str, Any] | None = self._plain(
            self._call(f"reading Lease {namespace}/{name}", self.coordination.read_namespaced_lease, name, namespace,
                       missing_ok=True, limited=False)
        )
        return lease

    def create_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease (409 when another candidate was faster)."""
        self._count("create", "Lease")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        lease: dict[str, Any] = self._plain(
            self._call(f"creating Lease {namespace}/{name}", self.coordination.create_namespaced_lease, namespace,
                       body, limited=False)
        )
        return lease

    def replace_lease(self, namespace: str, name: str, resource_version: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Update the Lease only if nobody wrote it since `resource_version` (else 409)."""
        self._count("update", "Lease")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
                "spec": spec}
        lease: dict[str, Any] = self._plain(
            self._call(f"updating Lease {namespace}/{name}", self.coordination.replace_namespaced_lease, name,
                       namespace, body, limited=False)
        )
        return lease
