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
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram

from modelfleet import api

log = logging.getLogger(__name__)

REQUESTS = PromCounter(
    "modelfleet_kube_requests", "Requests the operator sent to the Kubernetes API", ["verb", "resource"]
)
REQUEST_SECONDS = Histogram(
    "modelfleet_kube_request_duration_seconds", "Duration of one Kubernetes API call, failed ones included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30),
)


class KubeError(Exception):
    """An API call failed; `retryable` says whether trying again later can help."""

    def __init__(
        self,
        message: str,
        status: int | None,
        retryable: bool,
        api_message: str = "",
        fields: tuple[str, ...] = (),
        causes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.api_message = api_message or message  # the API server's own words (Status.message)
        self.fields = fields  # the fields it named (Status.details.causes[].field)
        self.causes = causes  # the reasons it gave (Status.details.causes[].reason)

    @property
    def namespace_terminating(self) -> bool:
        """Refused because the namespace is being deleted: the object is going with it, nothing to report."""
        return "NamespaceTerminating" in self.causes

    @property
    def refused(self) -> bool:
        """The API server (or an admission plugin) refused the object itself: retrying the same cannot help."""
        return self.status in (400, 403, 422)


def _wrap(exc: ApiException, what: str) -> KubeError:
    status = int(exc.status or 0)
    reason = exc.reason or ""
    raw = exc.body if isinstance(exc.body, str) else (exc.body or b"").decode("utf-8", "replace")
    api_message = ""
    fields: tuple[str, ...] = ()
    cause_reasons: tuple[str, ...] = ()
    try:
        doc = json.loads(raw)
        api_message = str(doc.get("message") or "")
        causes = (doc.get("details") or {}).get("causes") or []
        fields = tuple(str(c["field"]) for c in causes if c.get("field"))
        cause_reasons = tuple(str(c["reason"]) for c in causes if c.get("reason"))
    except (ValueError, AttributeError):
        pass
    retryable = status in (0, 409, 429) or status >= 500
    detail = api_message or raw[:500]
    return KubeError(
        f"{what}: {status} {reason} {detail}".strip(), status, retryable, api_message, fields, cause_reasons
    )


def _unreachable(exc: Exception, what: str) -> KubeError:
    """A call that got no HTTP answer at all (timeout, refused, reset): retryable, status 0."""
    return KubeError(f"{what}: no answer from the API server ({type(exc).__name__}: {exc})"[:600], 0, True)


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
        may_write: Callable[[], bool] | None = None,
    ) -> None:
        if api_client is None:
            configuration = client.Configuration.get_default_copy()
            configuration.retries = _RETRY if retry else False
            # kopf's workers, the resync and the autoscaler call at once; urllib3's default of 10
            # pooled connections would churn ("Connection pool is full, discarding connection").
            configuration.connection_pool_maxsize = 32
            api_client = client.ApiClient(configuration)
        self.api_client = api_client
        self.timeout = timeout
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

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
        """One API call with our timeouts; every failure becomes a KubeError (None for a 404 when missing_ok)."""
        try:
            with REQUEST_SECONDS.time():  # failed calls too: a timeout is the latency that matters
                return fn(*args, _request_timeout=self.timeout, **kwargs)
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

    def list_watched(self, kind: str, namespace: str | None) -> list[dict[str, Any]]:
        """Every LLMDeployment, child Deployment, ReplicaSet or model Pod in `namespace` (None: all namespaces)."""
        self._count("list", kind)
        where = namespace or "all namespaces"
        labelled: dict[str, Any] = {"label_selector": api.DEPLOYMENT_LABEL}
        result: Any
        if kind == api.KIND:
            if namespace:
                fn: Callable[..., Any] = self.custom.list_namespaced_custom_object
                args: tuple[Any, ...] = (api.GROUP, api.VERSION, namespace, api.PLURAL)
            else:
                fn, args = self.custom.list_cluster_custom_object, (api.GROUP, api.VERSION, api.PLURAL)
            result = self._call(f"listing {api.KIND}s in {where}", fn, *args)
            return list(result.get("items", []))
        if kind == "Deployment":
            if namespace:
                result = self._call(f"listing Deployments in {where}", self.apps.list_namespaced_deployment,
                                    namespace, **labelled)
            else:
                result = self._call(f"listing Deployments in {where}",
                                    self.apps.list_deployment_for_all_namespaces, **labelled)
        elif kind == "ReplicaSet":
            if namespace:
                result = self._call(f"listing ReplicaSets in {where}", self.apps.list_namespaced_replica_set,
                                    namespace, **labelled)
            else:
                result = self._call(f"listing ReplicaSets in {where}",
                                    self.apps.list_replica_set_for_all_namespaces, **labelled)
        elif namespace:
            result = self._call(f"listing Pods in {where}", self.core.list_namespaced_pod, namespace, **labelled)
        else:
            result = self._call(f"listing Pods in {where}", self.core.list_pod_for_all_namespaces, **labelled)
        items: list[dict[str, Any]] = self._plain(result).get("items", [])
        return items

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
        )
        applied: dict[str, Any] = self._plain(result)
        return applied

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None) -> None:
        """Merge-patch the LLMDeployment's status; with a resourceVersion it fails on a concurrent write (409)."""
        self._writing("patch", f"{api.KIND}/status", f"writing status of {namespace}/{name}")
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        self._call(
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
        )

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
                       missing_ok=True)
        )
        return lease

    def create_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease (409 when another candidate was faster)."""
        self._count("create", "Lease")
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        lease: dict[str, Any] = self._plain(
            self._call(f"creating Lease {namespace}/{name}", self.coordination.create_namespaced_lease, namespace,
                       body)
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
                       namespace, body)
        )
        return lease
