"""An in-memory view of LLMDeployments and their Deployments, fed by kopf's watch events.

The autoscaler reads it every cycle instead of listing objects from the API server.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
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
        """Record a watch event of a child Deployment (keyed by its owner's name)."""
        obj = dict(event.get("object") or {})
        owner = self._owner(obj)
        if owner:
            obj = {**obj, "metadata": {**obj["metadata"], "name": owner}}
            self._observe(self._deployments, {**event, "object": obj})

    def observe_pod(self, event: Any) -> dict[str, Any] | None:
        """Record a watch event of a model pod (grouped by its owner); returns the pod as it was before."""
        obj = dict(event.get("object") or {})
        owner = self._owner(obj)
        if not owner:
            return None
        key = (str(obj["metadata"].get("namespace", "")), owner)
        pod_name = str(obj["metadata"].get("name", ""))
        with self._lock:
            pods = self._pods.setdefault(key, {})
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
                View(llm, self._deployments.get(key), list(self._pods.get(key, {}).values()))
                for key, llm in self._llms.items()
            ]


@dataclass(frozen=True)
class View:
    """One LLMDeployment and its children as last seen."""

    llm: dict[str, Any]
    deployment: dict[str, Any] | None
    pods: list[dict[str, Any]]
