"""An in-memory view of LLMDeployments and their Deployments, fed by kopf's watch events.

The autoscaler reads it every cycle instead of listing objects from the API server.
"""

from __future__ import annotations

import threading
from typing import Any

from modelfleet import api

Key = tuple[str, str]


class Registry:
    """Latest known body of every watched LLMDeployment and child Deployment, by (namespace, name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._llms: dict[Key, dict[str, Any]] = {}
        self._deployments: dict[Key, dict[str, Any]] = {}

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

    def observe_deployment(self, event: Any) -> None:
        """Record a watch event of a child Deployment (keyed by its owner's name)."""
        obj = dict(event.get("object") or {})
        owner = (obj.get("metadata", {}).get("labels") or {}).get(api.DEPLOYMENT_LABEL)
        if owner:
            obj = {**obj, "metadata": {**obj["metadata"], "name": owner}}
            self._observe(self._deployments, {**event, "object": obj})

    def snapshot(self) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """(LLMDeployment, its Deployment or None) pairs, copied so callers may not race the watchers."""
        with self._lock:
            return [(llm, self._deployments.get(key)) for key, llm in self._llms.items()]
