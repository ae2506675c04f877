"""Watches of our child objects (Deployments, Services, Pods) filtered by label on the API server.

kopf's `labels=` filter is applied on the client: it would LIST and WATCH every pod of a shared
cluster into this process. Here the label selector goes to the server, so only objects carrying
`modelfleet.io/deployment` ever reach the operator. Each informer keeps a resourceVersion:
- the first round (and any after a 410 Gone) LISTs page by page and rebuilds that kind in the
  registry by mark-and-sweep (what vanished unseen is dropped);
- every round then WATCHes from the last resourceVersion (bookmarks keep it fresh while idle)
  until the server ends the watch, and the next round carries on from there without a LIST.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from modelfleet import api
from modelfleet.kube import Kube, KubeError
from modelfleet.paging import Expired
from modelfleet.registry import API_KINDS, Registry, item_key

log = logging.getLogger(__name__)

RECEIVED = Counter(
    "modelfleet_watch_objects_received",
    "Objects the operator received from LISTs and watches of its children",
    ["kind"],
)
UNLABELLED = Counter(
    "modelfleet_watch_unlabelled_objects",
    "Objects received without the modelfleet label (0 while the label filter runs on the server)",
    ["kind"],
)
RELISTS = Counter("modelfleet_watch_relists", "Full LISTs of a child kind (the first, and after 410 Gone)", ["kind"])

#: (event type, object, the object as it was before or None) for every change a watch reports.
Handler = Callable[[str, dict[str, Any], dict[str, Any] | None], None]


class Informer:
    """LIST-then-WATCH of one child kind in one namespace (None: all), into the registry."""

    def __init__(
        self,
        kube: Kube,
        registry: Registry,
        kind: str,
        namespace: str | None,
        handler: Handler,
        accept: Callable[[str], bool],
        watch_seconds: int,
    ) -> None:
        self.kube, self.registry, self.kind, self.namespace = kube, registry, kind, namespace
        self.api_kind = API_KINDS[kind]
        self.handler, self.accept, self.watch_seconds = handler, accept, watch_seconds
        self.resource_version = ""  # empty: a LIST is due
        self.synced = threading.Event()  # set once the first LIST is in the registry

    @property
    def name(self) -> str:
        """The supervised loop's name, e.g. `watch-pod` or `watch-pod-serving`."""
        return f"watch-{self.kind}" + (f"-{self.namespace}" if self.namespace else "")

    def _ours(self, obj: dict[str, Any]) -> bool:
        RECEIVED.labels(self.kind).inc()
        if item_key(self.kind, obj) is None:  # the server should never send one: counted, not kept
            UNLABELLED.labels(self.kind).inc()
            return False
        return bool(self.accept(str((obj.get("metadata") or {}).get("namespace", ""))))

    def relist(self) -> None:
        """LIST every labelled object (paginated) and rebuild this kind in the registry."""
        RELISTS.labels(self.kind).inc()
        first = not self.synced.is_set()
        mark = self.registry.mark()
        items, version = self.kube.list_all(self.api_kind, self.namespace, api.DEPLOYMENT_LABEL)
        ours = [obj for obj in items if self._ours(obj)]
        self.registry.replace_from_list(mark, [(self.kind, obj) for obj in ours], kinds=[self.kind])
        self.resource_version = version
        self.synced.set()
        if not first:  # changes missed while the watch was gone: let the handler look at each object
            for obj in ours:
                self.handler("MODIFIED", obj, None)

    def watch_once(self) -> None:
        """Follow the watch from the last resourceVersion until the server ends it (or it expires)."""
        for event in self.kube.watch(
            self.api_kind, self.namespace, api.DEPLOYMENT_LABEL, self.resource_version, self.watch_seconds
        ):
            kind, obj = str(event.get("type", "")), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    log.info("%s: resourceVersion %s expired; listing again", self.name, self.resource_version)
                    self.resource_version = ""
                    return
                message = f"{self.name}: watch error {obj.get('code')} {obj.get('message')}"
                raise KubeError(message, obj.get("code"), True)
            version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if kind != "BOOKMARK" and self._ours(obj):
                previous = self.registry.observe(self.kind, {"type": kind, "object": obj})
                self.handler(kind, obj, previous)
            if version:
                self.resource_version = version

    def round_blocking(self) -> None:
        """One supervised round: LIST when due, then one watch."""
        if not self.resource_version:
            self.relist()
        try:
            self.watch_once()
        except (KubeError, Expired) as exc:
            if getattr(exc, "status", None) == 410 or isinstance(exc, Expired):
                self.resource_version = ""
                return
            raise

    async def round(self) -> None:
        """The round on a thread of its own: a watch blocks for minutes, so never the loop's shared executor;
        a daemon thread, so a watch still open does not hold up the process's exit."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:
            if done.done():  # cancelled meanwhile (shutdown)
                return
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

        def run() -> None:
            try:
                self.round_blocking()
            except BaseException as exc:  # handed to the supervisor, which logs and counts it
                loop.call_soon_threadsafe(settle, exc)
            else:
                loop.call_soon_threadsafe(settle, None)

        threading.Thread(target=run, name=self.name, daemon=True).start()
        await done
