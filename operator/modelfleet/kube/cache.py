"""The shared model cache's calls (cache.py): a PVC and a download Job without an owner."""

from __future__ import annotations

from typing import Any

from modelfleet import api
from modelfleet.kube.base import KubeClient
from modelfleet.kubeerror import KubeError


class CacheCalls(KubeClient):
    """Reads and writes of model-cache PVCs, download Jobs and StorageClasses."""

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
