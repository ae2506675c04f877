"""Supervised background work: every loop survives any exception, and says when it last finished a round.

A loop is a named round function run every `interval` seconds. A round that raises is logged with
its traceback, counted in `modelfleet_loop_errors_total{loop}` and followed by the next round after
a capped, jittered back-off; a round that returns is counted in `modelfleet_loop_rounds_total{loop}`
and stamps `modelfleet_loop_last_round_timestamp_seconds{loop}`. `/healthz` (health.py) reads
`stalled()`: a loop whose last finished round is older than a few of its intervals is wedged (or
cut off from the API server), and the kubelet should restart the process.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

ROUNDS = Counter("modelfleet_loop_rounds", "Rounds a background loop finished without an error", ["loop"])
ERRORS = Counter("modelfleet_loop_errors", "Rounds of a background loop that raised (logged with traceback)", ["loop"])
LAST_ROUND = Gauge(
    "modelfleet_loop_last_round_timestamp_seconds", "Unix time a background loop last finished a round", ["loop"]
)

#: A loop is stalled after this many intervals without a finished round, plus SLACK seconds (a round
#: itself takes time: at worst a few API calls, each bounded by its read timeout).
STALL_INTERVALS = 3
STALL_SLACK_SECONDS = 30.0


def backoff(attempt: int, base: float, ceiling: float, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry `attempt` (1, 2, ...): base·2^(attempt-1), capped, with ±20 % jitter.

    The jitter keeps replicas and objects from retrying in lock-step; the cap bounds the wait.
    """
    raw = min(ceiling, base * 2 ** max(0, attempt - 1))
    return float(raw * (rng or random).uniform(0.8, 1.2))


@dataclass
class LoopState:
    """What health needs to know about one loop (monotonic clock)."""

    interval: float
    last_finished: float
    consecutive_errors: int = 0
    last_error: str = ""


class Loops:
    """Process-wide table of supervised loops; thread-safe (the lease loop runs in its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loops: dict[str, LoopState] = {}

    def register(self, name: str, interval: float, now: float | None = None) -> None:
        """A loop starts: its first round is due within the same grace as every later one."""
        with self._lock:
            self._loops[name] = LoopState(interval, time.monotonic() if now is None else now)
        LAST_ROUND.labels(name).set(time.time())

    def unregister(self, name: str) -> None:
        """A loop stopped on purpose (shutdown): no longer judged."""
        with self._lock:
            self._loops.pop(name, None)

    def finished(self, name: str, now: float | None = None) -> None:
        """A round ended without an error."""
        with self._lock:
            state = self._loops.get(name)
            if state is not None:
                state.last_finished = time.monotonic() if now is None else now
                state.consecutive_errors = 0
                state.last_error = ""
        ROUNDS.labels(name).inc()
        LAST_ROUND.labels(name).set(time.time())

    def failed(self, name: str, error: BaseException) -> int:
        """A round raised; returns how many rounds in a row have now failed."""
        ERRORS.labels(name).inc()
        with self._lock:
            state = self._loops.get(name)
            if state is None:
                return 1
            state.consecutive_errors += 1
            state.last_error = f"{type(error).__name__}: {error}"[:300]
            return state.consecutive_errors

    def stalled(self, now: float | None = None) -> dict[str, str]:
        """Loops with no finished round for STALL_INTERVALS intervals (+ slack), with the reason."""
        now = time.monotonic() if now is None else now
        out: dict[str, str] = {}
        with self._lock:
            for name, st in self._loops.items():
                age = now - st.last_finished
                if age > STALL_INTERVALS * st.interval + STALL_SLACK_SECONDS:
                    why = f"no round finished for {age:.0f}s (interval {st.interval:g}s)"
                    if st.last_error:
                        why += f"; {st.consecutive_errors} failed in a row, last: {st.last_error}"
                    out[name] = why
        return out

    def report(self, now: float | None = None) -> dict[str, dict[str, object]]:
        """Per loop: seconds since the last finished round, interval, errors in a row, last error."""
        now = time.monotonic() if now is None else now
        with self._lock:
            return {
                name: {
                    "secondsSinceRound": round(now - st.last_finished, 1),
                    "interval": st.interval,
                    "consecutiveErrors": st.consecutive_errors,
                    "lastError": st.last_error,
                }
                for name, st in self._loops.items()
            }


LOOPS = Loops()


async def supervised(
    name: str, interval: float, round_: Callable[[], Awaitable[None]], *, first_delay: float | None = None
) -> None:
    """Run `round_` every `interval` seconds until cancelled; no exception ends the loop.

    After failures the wait grows (interval·2^n, at most 4 intervals) so a broken dependency is not
    hammered; the first clean round resets it.
    """
    LOOPS.register(name, interval)
    try:
        await asyncio.sleep(interval if first_delay is None else first_delay)
        while True:
            started = time.monotonic()
            delay = interval
            try:
                await round_()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the point of the supervisor: log, count, go on
                errors = LOOPS.failed(name, exc)
                log.exception("%s loop: round failed (%d in a row); next round goes on", name, errors)
                delay = backoff(errors, interval, 4 * interval)
            else:
                LOOPS.finished(name)
            await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))
    finally:
        LOOPS.unregister(name)
