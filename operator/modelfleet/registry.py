"""An in-memory view of LLMDeployments and their Deployments, fed by kopf's watch events.

The autoscaler reads it every cycle instead of listing objects from the API server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from modelfleet import api

Key = tuple[str, str]


class Registry:
    """Latest known body of every watched LLMDeployment and child Deployment, by (namespace, name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._llms: dict[Key, dict[str, Any]] = {}
        self._deployments: dict[Key, dict[str, Any]] = {}
        self._pods: dict[Key, dict[str, dict[str, Any]]] = {}
        self._replicasets: dict[Key, dict[str, dict[str, Any]]] = {}

    @staticmethod
    def _key(obj: dict[str, Any]) -> Key:
        meta = obj.get("metadata", {})
        return str(meta.get("namespace", "")), str(meta.get("name", ""))

    def _observe(self, store: dict[Key, dict[str, Any]], event: Any) -> None:
        obj = dict(event.get("object") or {})
        if not obj.get("metadata"):
            return
        with self._lock:
            if event.get("type") == "DELETED":
                store.pop(self._key(obj), None)
            else:
                store[self._key(obj)] = obj

    def observe_llm(self, event: Any) -> None:
        """Record a watch event of an LLMDeployment."""
        self._observe(self._llms, event)

    @staticmethod
    def _owner(obj: dict[str, Any]) -> str | None:
        owner = (obj.get("metadata", {}).get("labels") or {}).get(api.DEPLOYMENT_LABEL)
        return str(owner) if owner else None

    def observe_deployment(self, event: Any) -> None:
        """Record a watch event of a child Deployment (keyed by its owner's name).

        Only the Deployment named after its LLMDeployment counts: another one carrying the same
        label (anyone in the namespace can set labels) must not take its place.
        """
        obj = dict(event.get("object") or {})
        owner = self._owner(obj)
        if owner and obj["metadata"].get("name") == owner:
            obj = {**obj, "metadata": {**obj["metadata"], "name": owner}}
            self._observe(self._deployments, {**event, "object": obj})

    def observe_pod(self, event: Any) -> dict[str, Any] | None:
        """Record a watch event of a model pod (grouped by its owner); returns the pod as it was before."""
        return self._observe_grouped(self._pods, event)

    def observe_replicaset(self, event: Any) -> None:
        """Record a watch event of a model ReplicaSet (grouped by its owner), to tell our pods from look-alikes."""
        self._observe_grouped(self._replicasets, event)

    def _observe_grouped(self, store: dict[Key, dict[str, dict[str, Any]]], event: Any) -> dict[str, Any] | None:
        obj = dict(event.get("object") or {})
        owner = self._owner(obj)
        if not owner:
            return None
        key = (str(obj["metadata"].get("namespace", "")), owner)
        pod_name = str(obj["metadata"].get("name", ""))
        with self._lock:
            pods = store.setdefault(key, {})
            if event.get("type") == "DELETED":
                return pods.pop(pod_name, None)
            previous = pods.get(pod_name)
            pods[pod_name] = obj
            return previous

    def get_llm(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The latest body of one LLMDeployment, if it is known."""
        with self._lock:
            return self._llms.get((namespace, name))

    def snapshot(self) -> list[View]:
        """Every known LLMDeployment with its Deployment and pods, copied so callers may not race the watchers."""
        with self._lock:
            return [
                View(
                    llm,
                    self._deployments.get(key),
                    list(self._pods.get(key, {}).values()),
                    list(self._replicasets.get(key, {}).values()),
                )
                for key, llm in self._llms.items()
            ]


@dataclass(frozen=True)
class View:
    """One LLMDeployment and its children as last seen."""

    llm: dict[str, Any]
    deployment: dict[str, Any] | None
    pods: list[dict[str, Any]]
    replicasets: list[dict[str, Any]] = field(default_factory=list)

    def owned_pods(self) -> list[dict[str, Any]]:
        """The pods of the operator's own Deployment: LLMDeployment -> Deployment -> ReplicaSet -> Pod, each
        link a controller ownerReference by UID. A pod that only carries the label (anyone in the
        namespace can create one) is left out, so it cannot feed the autoscaler."""
        if self.deployment is None:
            return []
        llm_uid = self.llm.get("metadata", {}).get("uid")
        if llm_uid is None or controller_uid(self.deployment) != llm_uid:
            return []
        dep_uid = self.deployment["metadata"].get("uid")
        ours = {rs["metadata"].get("uid") for rs in self.replicasets if controller_uid(rs) == dep_uid}
        return [p for p in self.pods if controller_uid(p) in ours]


def controller_uid(obj: dict[str, Any]) -> str | None:
    """The UID of an object's controller (the ownerReference with controller: true), if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None
