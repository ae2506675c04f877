"""Process-wide state of a running operator: settings, the API client, the registry, the autoscaler task."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from modelfleet.kube import Kube
from modelfleet.ratelimit import TokenBucket
from modelfleet.registry import DEPLOYMENT, POD, REPLICASET, SERVICE, Registry, namespace_matcher
from modelfleet.settings import Settings
from modelfleet.workqueue import WorkQueue

if TYPE_CHECKING:
    from modelfleet.informer import Informer
    from modelfleet.reconcile import Cache

log = logging.getLogger(__name__)


class Runtime:
    """Created once by `modelfleet run`; handlers reach it through RUNTIME."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.registry = Registry()
        self._kube: Kube | None = None
        self.may_write: Callable[[], bool] | None = None  # leader election's gate, set before kopf starts
        self._tasks: list[asyncio.Task[None]] = []
        self.informers: list[Informer] = []
        self._queue: WorkQueue | None = None

    @property
    def queue(self) -> WorkQueue:
        """Owners to reconcile after a child changed (bounded workers, one reconcile per key at a time)."""
        if self._queue is None:
            from modelfleet import sync

            self._queue = WorkQueue(sync.refresh, self.settings.max_concurrent_reconciles, name="reconcile")
        return self._queue

    def cache_synced(self) -> bool:
        """Every child watch has listed once: the registry can stand in for the API on reads."""
        return bool(self.informers) and all(i.synced.is_set() for i in self.informers)

    def reader(self) -> Cache:
        """Where reconciles read children: the registry once the watches listed, else the API."""
        from modelfleet.reconcile import ApiReader

        return self.registry if self.cache_synced() else ApiReader(self.kube)

    @property
    def kube(self) -> Kube:
        """The API client, built on first use (after kubeconfig is loaded)."""
        if self._kube is None:
            s = self.settings
            self._kube = Kube(
                timeout=(s.api_connect_timeout_seconds, s.api_read_timeout_seconds),
                limiter=TokenBucket(s.api_qps, s.api_burst),
                event_workers=2,
                may_write=self.may_write,
            )
        return self._kube

    def configure(self, settings: Settings) -> None:
        """Install the settings `modelfleet run` read."""
        self.settings = settings

    def start(self) -> None:
        """Start the supervised loops: resync, registry relist and, when metrics are on, the autoscaler.

        Plain tasks, not kopf timers: kopf puts a finalizer on every object that has a timer, and an
        uninstalled operator would then block each deletion.
        """
        from modelfleet import sync
        from modelfleet.supervise import supervised

        loop = asyncio.get_running_loop()
        resync = self.settings.resync_seconds
        self.queue.start()
        self._start_watches(loop)
        self._tasks.append(loop.create_task(supervised("resync", resync, sync.resync_round)))
        # The first relist right away: kopf's own initial LIST is running too, but this one also
        # proves the API server answers before the first health judgement.
        self._tasks.append(loop.create_task(supervised("registry", resync, sync.relist_round, first_delay=0)))
        if self.settings.metrics_mode != "off":
            from modelfleet.autoscaler.runner import Autoscaler

            autoscaler = Autoscaler(self, lock=sync.turn)
            interval = self.settings.autoscale_interval_seconds
            self._tasks.append(loop.create_task(supervised("autoscaler", interval, autoscaler.cycle)))

    def _start_watches(self, loop: asyncio.AbstractEventLoop) -> None:
        """Label-filtered LIST+WATCH of child Deployments, ReplicaSets, Services and pods, each a supervised loop."""
        from modelfleet import sync
        from modelfleet.informer import Informer
        from modelfleet.supervise import supervised

        accept = namespace_matcher(self.settings.namespaces)
        seconds = min(self.settings.resync_seconds, 300)  # a watch round ends in time for the health judgement
        for kind in (DEPLOYMENT, REPLICASET, SERVICE, POD):
            handler = functools.partial(sync.on_child_event, kind)
            for namespace in sync.list_scope():
                informer = Informer(self.kube, self.registry, kind, namespace, handler, accept, seconds)
                self.informers.append(informer)
                self._tasks.append(loop.create_task(supervised(informer.name, seconds, informer.round, first_delay=0)))

    async def synced(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until every child watch has listed; False if not in time."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.cache_synced():
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def stop(self) -> None:
        """Cancel the background loops."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self.informers.clear()
        if self._queue is not None:
            self._queue.stop()


RUNTIME = Runtime()
