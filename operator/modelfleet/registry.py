"""An in-memory view of LLMDeployments, their Deployments and pods, fed by kopf's watch events.

The autoscaler reads it every cycle instead of listing objects from the API server.

Watch events alone can leave ghosts: after a relist (410 Gone) kopf re-delivers what exists but
never a DELETED for what vanished meanwhile. So the registry is also rebuilt from a fresh LIST now
and then (`replace_from_list`, mark-and-sweep): what the LIST lacks is dropped unless a watch event
newer than the LIST's start re-added it; what the LIST has is taken unless a newer event (or a
deletion) was seen meanwhile. Every observation carries a sequence number to tell "newer" apart.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from modelfleet import api

Key = tuple[str, str]
# (kind, namespace, owner LLMDeployment, object name); for LLMDeployments owner == name.
ItemKey = tuple[str, str, str, str]
LLM, DEPLOYMENT, POD, SERVICE, REPLICASET = "llm", "deployment", "pod", "service", "replicaset"
KINDS = (LLM, DEPLOYMENT, POD, SERVICE, REPLICASET)
#: The API kind of each registry kind (what a LIST or watch asks for).
API_KINDS = {LLM: api.KIND, DEPLOYMENT: "Deployment", POD: "Pod", SERVICE: "Service", REPLICASET: "ReplicaSet"}
_BY_API_KIND = {v: k for k, v in API_KINDS.items()}


def _version(obj: dict[str, Any]) -> tuple[str, int] | None:
    """(uid, resourceVersion as a number) when the version is numeric, as etcd's always is; else None."""
    meta = obj.get("metadata") or {}
    raw = str(meta.get("resourceVersion") or "")
    return (str(meta.get("uid") or ""), int(raw)) if raw.isdigit() else None


def _versions(candidate: dict[str, Any], held: dict[str, Any]) -> tuple[int, int] | None:
    """Both resourceVersions as numbers when both are states of one object (same uid); else None."""
    a, b = _version(candidate), _version(held)
    return (a[1], b[1]) if a is not None and b is not None and bool(a[0]) and a[0] == b[0] else None


def older(candidate: dict[str, Any], held: dict[str, Any]) -> bool:
    """`candidate` is an older state of the very object `held` (same uid, smaller resourceVersion).

    Our own writes are recorded from the API's answer before the watch delivers them; the watch's
    older events must not roll that back. resourceVersions are compared as numbers only when both
    are (opaque in the API contract, etcd revisions in every real server); otherwise newest-seen wins.
    """
    versions = _versions(candidate, held)
    return versions is not None and versions[0] < versions[1]


def _buried(candidate: dict[str, Any], tomb: tuple[int, dict[str, Any] | None] | None) -> bool:
    """`candidate` is a state of an object from before its recorded deletion (same uid, no newer version)."""
    versions = _versions(candidate, tomb[1]) if tomb is not None and tomb[1] is not None else None
    return versions is not None and versions[0] <= versions[1]


def _owner(obj: dict[str, Any]) -> str | None:
    owner = (obj.get("metadata", {}).get("labels") or {}).get(api.DEPLOYMENT_LABEL)
    return str(owner) if owner else None


#: Top-level fields kept per kind; the rest is never read here (a pod's spec, a ReplicaSet's pod template
#: and status are most of their bytes). None: all. Deployments and Services keep their spec (drift check).
_KEPT: dict[str, tuple[str, ...] | None] = {
    POD: ("apiVersion", "kind", "metadata", "status"),
    REPLICASET: ("apiVersion", "kind", "metadata"),
}
#: Metadata never read here: the server's field bookkeeping, and copies of a whole earlier spec.
_DROPPED_META = ("managedFields",)
_DROPPED_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", f"{api.GROUP}/last-handled-configuration")


def slim(obj: dict[str, Any], kind: str = "") -> dict[str, Any]:
    """The parts of an object the operator reads: no metadata.managedFields, no kubectl's or kopf's copy of an
    earlier spec in the annotations, and for pods and ReplicaSets only what status and the autoscaler read.
    A shallow copy: the caller's (kopf's) dict is left as it was."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    keep = _KEPT.get(kind)
    out = {k: v for k, v in obj.items() if keep is None or k in keep}
    slim_meta = {k: v for k, v in meta.items() if k not in _DROPPED_META}
    notes = meta.get("annotations")
    if isinstance(notes, dict) and any(k in notes for k in _DROPPED_ANNOTATIONS):
        slim_meta["annotations"] = {k: v for k, v in notes.items() if k not in _DROPPED_ANNOTATIONS}
    out["metadata"] = slim_meta
    return out


def item_key(kind: str, obj: dict[str, Any]) -> ItemKey | None:
    """Where an object lives in the registry; None for objects that are not ours."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
    if not name:
        return None
    if kind == LLM:
        return (LLM, namespace, name, name)
    owner = _owner(obj)
    return (kind, namespace, owner, name) if owner else None


def namespace_matcher(patterns: Iterable[str]) -> Any:
    """kopf's namespace patterns (globs, `!` excludes) as a predicate; no patterns: every namespace."""
    pats = [p for p in patterns if p]
    include = [p for p in pats if not p.startswith("!")]
    exclude = [p[1:] for p in pats if p.startswith("!")]

    def match(namespace: str) -> bool:
        if any(fnmatch.fnmatchcase(namespace, p) for p in exclude):
            return False
        return not include or any(fnmatch.fnmatchcase(namespace, p) for p in include)

    return match


class Registry:
    """Latest known body of every watched object, with sequence numbers for mark-and-sweep."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq = 0
        self._items: dict[ItemKey, tuple[int, dict[str, Any]]] = {}
        # deleted since the last sweep: when (sequence number), and the body the deletion carried
        self._tombstones: dict[ItemKey, tuple[int, dict[str, Any] | None]] = {}

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _observe(self, kind: str, event: Any) -> tuple[ItemKey | None, dict[str, Any] | None]:
        """Apply one watch event; returns (key, the object as it was before)."""
        obj = slim(dict(event.get("object") or {}), kind)
        key = item_key(kind, obj)
        if key is None:
            return None, None
        with self._lock:
            seq = self._next()
            before = self._items.get(key)
            if event.get("type") == "DELETED":
                self._items.pop(key, None)
                self._tombstones[key] = (seq, obj)
                if kind == LLM:  # its children's entries go with it; their own DELETED events may never come
                    self._drop_children(key[1], key[2], seq)
            elif before is None and _buried(obj, self._tombstones.get(key)):
                pass  # one of our writes answered before the deletion, arriving after it: no ghost
            elif before is None or not older(obj, before[1]):
                self._items[key] = (seq, obj)
                self._tombstones.pop(key, None)
        return key, before[1] if before else None

    def observe(self, kind: str, event: Any) -> dict[str, Any] | None:
        """Record a watch event of any kind; returns the object as it was before (None if unknown)."""
        return self._observe(kind, event)[1]

    def record(self, kind: str, obj: dict[str, Any]) -> None:
        """Record what one of our own writes returned, so the next reconcile starts from it."""
        self._observe(kind, {"type": "MODIFIED", "object": obj})

    def _drop_children(self, namespace: str, owner: str, seq: int) -> None:
        for key in [k for k in self._items if k[0] != LLM and k[1] == namespace and k[2] == owner]:
            del self._items[key]
            self._tombstones[key] = (seq, None)

    def observe_llm(self, event: Any) -> bool:
        """Record a watch event of an LLMDeployment; True when it was a deletion (prune what is kept for it)."""
        key, _ = self._observe(LLM, event)
        return key is not None and event.get("type") == "DELETED"

    def mark(self) -> int:
        """Call before a LIST: observations after this mark are newer than anything the LIST returns."""
        with self._lock:
            return self._seq

    def replace_from_list(
        self, mark: int, listed: Iterable[tuple[str, dict[str, Any]]], kinds: Iterable[str] = KINDS
    ) -> list[Key]:
        """Rebuild `kinds` from a LIST started at `mark`: returns the LLMDeployments dropped as ghosts.

        Only the kinds listed are swept: a relist of pods says nothing about Deployments."""
        swept = set(kinds)
        fresh: dict[ItemKey, dict[str, Any]] = {}
        for kind, obj in listed:
            key = item_key(kind, obj)
            if key is not None:
                fresh[key] = slim(obj, kind)
        removed: list[Key] = []
        with self._lock:
            seq = self._next()
            for key, (seen, _) in list(self._items.items()):
                # gone, and no event since the LIST began says otherwise
                if key[0] in swept and key not in fresh and seen <= mark:
                    del self._items[key]
                    if key[0] == LLM:
                        removed.append((key[1], key[2]))
            for key, obj in fresh.items():
                seen = self._items[key][0] if key in self._items else self._tombstones.get(key, (0, None))[0]
                if seen <= mark:  # nothing newer than the LIST was observed (no event, no deletion)
                    self._items[key] = (seq, obj)
            self._tombstones = {k: t for k, t in self._tombstones.items() if t[0] > mark or k[0] not in swept}
        return removed

    def get_llm(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The latest body of one LLMDeployment, if it is known."""
        with self._lock:
            entry = self._items.get((LLM, namespace, name, name))
            return entry[1] if entry else None

    def get_child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The cached Deployment or Service `name` of the LLMDeployment `name` (reconcile's Cache)."""
        with self._lock:
            entry = self._items.get((DEPLOYMENT if kind == "Deployment" else SERVICE, namespace, name, name))
            return entry[1] if entry else None

    def written(self, kind: str, obj: dict[str, Any]) -> None:
        """What one of our writes returned (`kind`: Deployment, Service or LLMDeployment), kept at once."""
        self.record(_BY_API_KIND[kind], obj)

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The cached pods of one LLMDeployment."""
        with self._lock:
            return [obj for (kind, ns, owner, _), (_, obj) in self._items.items()
                    if kind == POD and ns == namespace and owner == name]

    def snapshot(self) -> list[View]:
        """Every known LLMDeployment with its Deployment and pods, copied so callers may not race the watchers."""
        with self._lock:
            deployments: dict[Key, dict[str, Any]] = {}
            pods: dict[Key, list[dict[str, Any]]] = {}
            replicasets: dict[Key, list[dict[str, Any]]] = {}
            llms: list[tuple[Key, dict[str, Any]]] = []
            for (kind, namespace, owner, name), (_, obj) in self._items.items():
                if kind == LLM:
                    llms.append(((namespace, owner), obj))
                elif kind == DEPLOYMENT:
                    # Only the Deployment named after its LLMDeployment: another one carrying the same
                    # label (anyone in the namespace can set labels) must not take its place.
                    if name == owner:
                        deployments[(namespace, owner)] = obj
                elif kind == REPLICASET:
                    replicasets.setdefault((namespace, owner), []).append(obj)
                elif kind == POD:
                    pods.setdefault((namespace, owner), []).append(obj)
            return [
                View(llm, deployments.get(key), pods.get(key, []), replicasets.get(key, [])) for key, llm in llms
            ]

    def size(self) -> dict[str, int]:
        """How many objects of each kind are held (for /metrics and tests)."""
        with self._lock:
            out = dict.fromkeys(KINDS, 0)
            for key in self._items:
                out[key[0]] += 1
            return out


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
