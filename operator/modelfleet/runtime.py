"""Process-wide state of a running operator: settings, the API client, the registry, the autoscaler task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

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
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def kube(self) -> Kube:
        """The API client, built on first use (after kubeconfig is loaded)."""
        if self._kube is None:
            self._kube = Kube()
        return self._kube

    def configure(self, settings: Settings) -> None:
        """Install the settings `modelfleet run` read."""
        self.settings = settings

    def start(self, resync: Coroutine[Any, Any, None]) -> None:
        """Start the resync loop and, when metrics are on, the autoscaler loop."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(resync))
        if self.settings.metrics_mode != "off":
            from modelfleet.autoscaler.runner import run_forever

            self._tasks.append(loop.create_task(run_forever(self)))

    async def stop(self) -> None:
        """Cancel the background loops."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


RUNTIME = Runtime()
