"""Process-wide state of a running operator: settings, the API client, the registry, the autoscaler task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from modelfleet.kube import Kube
from modelfleet.registry import Registry
from modelfleet.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """Created once by `modelfleet run`; handlers reach it through RUNTIME."""

    def __init__(self) -> None:
        self.settings = Settings()
        self.registry = Registry()
        self._kube: Kube | None = None
        self.may_write: Callable[[], bool] | None = None  # leader election's gate, set before kopf starts
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def kube(self) -> Kube:
        """The API client, built on first use (after kubeconfig is loaded)."""
        if self._kube is None:
            s = self.settings
            timeout = (s.api_connect_timeout_seconds, s.api_read_timeout_seconds)
            self._kube = Kube(timeout=timeout, may_write=self.may_write)
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
        self._tasks.append(loop.create_task(supervised("resync", resync, sync.resync_round)))
        # The first relist right away: kopf's own initial LIST is running too, but this one also
        # proves the API server answers before the first health judgement.
        self._tasks.append(loop.create_task(supervised("registry", resync, sync.relist_round, first_delay=0)))
        if self.settings.metrics_mode != "off":
            from modelfleet.autoscaler.runner import Autoscaler

            autoscaler = Autoscaler(self)
            interval = self.settings.autoscale_interval_seconds
            self._tasks.append(loop.create_task(supervised("autoscaler", interval, autoscaler.cycle)))

    async def stop(self) -> None:
        """Cancel the background loops."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


RUNTIME = Runtime()
