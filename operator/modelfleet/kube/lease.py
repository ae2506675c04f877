"""The leader-election Lease's calls (leader.py): never rate-limited, so a busy rollout cannot cost the leadership."""

from __future__ import annotations

from typing import Any

from modelfleet.kube.base import KubeClient


class LeaseCalls(KubeClient):
    """Read, create and compare-and-swap the Lease."""

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
