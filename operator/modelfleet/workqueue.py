"""A de-duplicating work queue with a fixed number of workers, like client-go's workqueue.

Many watch events about one LLMDeployment's children (a rollout sends dozens) collapse into one
pending reconcile; a key that changes while its reconcile runs is queued once more afterwards, and
never runs twice at the same time. The worker count bounds parallel reconciles.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)


class WorkQueue:
    """Keys to process; `process(key)` runs on one of `workers` threads, one key at most once at a time."""

    def __init__(self, process: Callable[[Hashable], None], workers: int, name: str = "work") -> None:
        self._process = process
        self._cond = threading.Condition()
        self._queue: deque[Hashable] = deque()
        self._pending: set[Hashable] = set()  # queued, not started
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()  # added while running: queue once more when done
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(max(1, workers))
        ]

    def start(self) -> None:
        """Start the workers."""
        for thread in self._threads:
            thread.start()

    def add(self, key: Hashable) -> None:
        """Queue `key` unless it is already waiting."""
        with self._cond:
            if key in self._running:
                self._again.add(key)
            else:
                self._enqueue(key)

    def _enqueue(self, key: Hashable) -> None:
        """With the lock held: queue `key` unless it already waits."""
        if key not in self._pending:
            self._pending.add(key)
            self._queue.append(key)
            self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def idle(self) -> bool:
        """Nothing queued and nothing running."""
        with self._cond:
            return not self._queue and not self._running

    def stop(self) -> None:
        """Workers finish their current key and exit."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _next(self) -> Hashable | None:
        with self._cond:
            while not self._queue and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            key = self._queue.popleft()
            self._pending.discard(key)
            self._running.add(key)
            return key

    def _done(self, key: Hashable) -> None:
        with self._cond:
            self._running.discard(key)
            if key in self._again:
                self._again.discard(key)
                self._enqueue(key)

    def _work(self) -> None:
        while (key := self._next()) is not None:
            try:
                self._process(key)
            except Exception:  # a worker must outlive any one key's failure
                log.exception("work queue: processing %s failed", key)
            finally:
                self._done(key)
