"""Process-wide state of a running operator: settings, the API client, the registry, the autoscaler task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
        self._task: asyncio.Task[Any] | None = None

    @property
    def kube(self) -> Kube:
        """The API client, built on first use (after kubeconfig is loaded)."""
        if self._kube is None:
            self._kube = Kube()
        return self._kube

    def configure(self, settings: Settings) -> None:
        """Install the settings `modelfleet run` read."""
        self.settings = settings

    def start(self) -> None:
        """Start the autoscaler loop (when metrics are on)."""
        if self.settings.metrics_mode == "off" or self._task is not None:
            return
        from modelfleet.autoscaler.runner import run_forever

        self._task = asyncio.get_running_loop().create_task(run_forever(self))

    async def stop(self) -> None:
        """Cancel the autoscaler loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


RUNTIME = Runtime()
