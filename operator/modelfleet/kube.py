"""The only module that calls the Kubernetes API.

Writes are server-side applies with field manager `modelfleet`, or merge patches on the
status and scale subresources. Every request is counted in the operator's /metrics
(`modelfleet_kube_requests_total` by verb and resource), which tests and `bench/` read.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter as PromCounter

from modelfleet import api
from modelfleet.render import CONFIG_HASH_ANNOTATION

log = logging.getLogger(__name__)

REQUESTS = PromCounter(
    "modelfleet_kube_requests", "Requests the operator sent to the Kubernetes API", ["verb", "resource"]
)


class KubeError(Exception):
    """An API call failed; `retryable` says whether trying again later can help."""

    def __init__(self, message: str, status: int | None, retryable: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def _wrap(exc: ApiException, what: str) -> KubeError:
    status = int(exc.status or 0)
    reason = exc.reason or ""
    body = (exc.body or "")[:500] if isinstance(exc.body, str) else ""
    retryable = status in (0, 409, 429) or status >= 500
    return KubeError(f"{what}: {status} {reason} {body}".strip(), status, retryable)


def load_config() -> None:
    """In-cluster config when running in a pod, else the current kubeconfig."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()


class Kube:
    """A thin, counted client for the few calls the operator makes."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        self.api_client = api_client or client.ApiClient()
        self.core = client.CoreV1Api(self.api_client)
        self.apps = client.AppsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def _count(self, verb: str, resource: str) -> None:
        REQUESTS.labels(verb, resource).inc()

    # -- reads ---------------------------------------------------------------------------------
    def get_child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A Deployment or Service as a plain dict, or None when absent."""
        self._count("get", kind)
        obj: Any
        try:
            if kind == "Deployment":
                obj = self.apps.read_namespaced_deployment(name, namespace)
            else:
                obj = self.core.read_namespaced_service(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _wrap(exc, f"reading {kind} {namespace}/{name}") from exc
        result: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)
        return result

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The pods of one LLMDeployment."""
        self._count("list", "Pod")
        try:
            pods = self.core.list_namespaced_pod(namespace, label_selector=api.selector_string(name))
        except ApiException as exc:
            raise _wrap(exc, f"listing pods of {namespace}/{name}") from exc
        items: list[dict[str, Any]] = self.api_client.sanitize_for_serialization(pods).get("items", [])
        return items

    def get_llm(self, namespace: str, name: str) -> dict[str, Any] | None:
        """One LLMDeployment, or None when it is gone."""
        self._count("get", api.KIND)
        try:
            obj: Any = self.custom.get_namespaced_custom_object(api.GROUP, api.VERSION, namespace, api.PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise _wrap(exc, f"reading {api.KIND} {namespace}/{name}") from exc
        return dict(obj)

    def list_llms(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every LLMDeployment in `namespace` (None: all namespaces), for `modelfleet status`."""
        self._count("list", api.KIND)
        try:
            if namespace:
                found: Any = self.custom.list_namespaced_custom_object(api.GROUP, api.VERSION, namespace, api.PLURAL)
            else:
                found = self.custom.list_cluster_custom_object(api.GROUP, api.VERSION, api.PLURAL)
        except ApiException as exc:
            raise _wrap(exc, f"listing {api.KIND}s in {namespace or 'all namespaces'}") from exc
        return list(found.get("items", []))

    # -- writes --------------------------------------------------------------------------------
    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply of a Deployment or Service (create or update), forcing our fields."""
        kind, meta = obj["kind"], obj["metadata"]
        self._count("apply", kind)
        kwargs: dict[str, Any] = {
            "field_manager": api.FIELD_MANAGER,
            "force": True,
            "_content_type": "application/apply-patch+yaml",
        }
        result: Any
        try:
            if kind == "Deployment":
                result = self.apps.patch_namespaced_deployment(meta["name"], meta["namespace"], obj, **kwargs)
            else:
                result = self.core.patch_namespaced_service(meta["name"], meta["namespace"], obj, **kwargs)
        except ApiException as exc:
            raise _wrap(exc, f"applying {kind} {meta['namespace']}/{meta['name']}") from exc
        applied: dict[str, Any] = self.api_client.sanitize_for_serialization(result)
        return applied

    def apply_if_changed(self, obj: dict[str, Any], existing: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """Apply only when the config hash or the replica count differs; returns (object, changed)."""
        if existing is not None:
            have = (existing["metadata"].get("annotations") or {}).get(CONFIG_HASH_ANNOTATION)
            want = obj["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
            same_replicas = obj["kind"] != "Deployment" or existing["spec"].get("replicas") == obj["spec"]["replicas"]
            if have == want and same_replicas:
                return existing, False
        return self.apply(obj), True

    def patch_status(self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None) -> None:
        """Merge-patch the LLMDeployment's status; with a resourceVersion it fails on a concurrent write (409)."""
        self._count("patch", f"{api.KIND}/status")
        body: dict[str, Any] = {"status": patch}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        try:
            self.custom.patch_namespaced_custom_object_status(
                api.GROUP,
                api.VERSION,
                namespace,
                api.PLURAL,
                name,
                body,
                field_manager=api.FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            raise _wrap(exc, f"writing status of {namespace}/{name}") from exc

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set a Deployment's replicas through its scale subresource (the autoscaler's one write)."""
        self._count("patch", "Deployment/scale")
        try:
            self.apps.patch_namespaced_deployment_scale(
                name,
                namespace,
                {"spec": {"replicas": replicas}},
                field_manager=f"{api.FIELD_MANAGER}-autoscaler",
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            raise _wrap(exc, f"scaling {namespace}/{name} to {replicas}") from exc

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str]) -> None:
        """Set annotations on one pod (pod-deletion-cost)."""
        self._count("patch", "Pod")
        try:
            self.core.patch_namespaced_pod(
                name,
                namespace,
                {"metadata": {"annotations": annotations}},
                field_manager=api.FIELD_MANAGER,
                _content_type="application/merge-patch+json",
            )
        except ApiException as exc:
            raise _wrap(exc, f"annotating pod {namespace}/{name}") from exc

    def event(self, owner: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Post a core/v1 Event about an LLMDeployment."""
        self._count("create", "Event")
        meta = owner["metadata"]
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
            self.core.create_namespaced_event(meta["namespace"], body)
        except ApiException as exc:
            # An Event that cannot be posted must not fail the reconcile it describes.
            log.warning("could not post event %s on %s/%s: %s", reason, meta["namespace"], meta["name"], exc)
