"""Leader election on a coordination.k8s.io/v1 Lease: only the leader runs kopf, the resync and the autoscaler.

Choice: a standby does not start kopf at all (no watches, no handlers, no loops); it only tries to
take the Lease every `retry` seconds. Gating each handler and loop on leadership instead would keep
warm caches, but every new handler would have to remember the gate, and kopf would still patch
objects (finalizers, progress annotations) from the standby. Starting kopf costs the new leader one
initial LIST, about a second.

Timing (client-go's defaults scaled down; settings.py refuses retry < renew deadline < duration
broken): duration 8 s, renew deadline 5 s, retry 2 s.
- The leader renews every 2 s. When no renewal has succeeded for 5 s (API server restarting, a
  partition), it stops writing at once: kube/ refuses every write while `leading()` is false, 3 s
  before anyone else may take over, so two leaders never act at once. A renewal that succeeds later
  proves nobody took the Lease meanwhile (it carries the resourceVersion we last wrote), and writing
  resumes: an API server restart costs no process restart. Seeing another holder means the Lease is
  lost: the process exits (code 1) and the kubelet restarts it as a standby.
- A standby takes the Lease when it has seen the same renewTime for 8 s on its own clock (no clock
  sync needed between nodes). It sees a renewal up to one retry (2.2 s with jitter) late and notices
  the expiry up to one retry late, so after a leader's death it leads within 8 + 2.2 + 2.2 = 12.4 s,
  plus about a second for kopf to start: inside the 15 s target. (10 s would give 14.4 s + start,
  measured 16 s on a busy machine: too close.) A leader that shuts down cleanly releases the Lease and the
  standby takes over at its next retry (about 2 s).
- Each Lease call has a 2 s connect and read timeout, so one hung call cannot outlast the deadline,
  and a watchdog thread enforces the deadline whatever the calls do.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from modelfleet.kube import Kube, KubeError
from modelfleet.supervise import LOOPS

log = logging.getLogger(__name__)
IS_LEADER = Gauge("modelfleet_leader", "1 while this process holds the leader Lease, else 0")
TRANSITIONS = Counter("modelfleet_leader_acquired", "Times this process took the leader Lease")
LOOP = "lease"


def micro_time(t: float) -> str:
    """Epoch seconds as a Kubernetes MicroTime."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease fields election reads."""

    holder: str
    duration: float
    renew_time: str
    acquire_time: str
    transitions: int
    resource_version: str


def read_record(lease: dict[str, Any]) -> LeaseRecord:
    """A Lease (plain dict from kube/) as a record."""
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=str(spec.get("holderIdentity") or ""),
        duration=float(spec.get("leaseDurationSeconds") or 0),
        renew_time=str(spec.get("renewTime") or ""),
        acquire_time=str(spec.get("acquireTime") or ""),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str((lease.get("metadata") or {}).get("resourceVersion") or ""),
    )


def may_take(record: LeaseRecord, me: str, observed_at: float, now: float) -> bool:
    """Whether `me` may write the Lease: it holds it, nobody does, or the holder's renewal — unchanged since
    `observed_at` on our own monotonic clock — is older than the holder's own lease duration."""
    if record.holder in ("", me):
        return True
    return now - observed_at > record.duration


def claimed_spec(record: LeaseRecord | None, me: str, duration: int, now: float) -> dict[str, Any]:
    """The Lease spec that makes (or keeps) `me` the holder."""
    stamp = micro_time(now)
    if record is not None and record.holder == me:
        return {"holderIdentity": me, "leaseDurationSeconds": duration, "acquireTime": record.acquire_time or stamp,
                "renewTime": stamp, "leaseTransitions": record.transitions}
    transitions = 0 if record is None else record.transitions + (1 if record.holder else 0)
    return {"holderIdentity": me, "leaseDurationSeconds": duration, "acquireTime": stamp, "renewTime": stamp,
            "leaseTransitions": transitions}


class LeaderElector:
    """Takes and keeps one Lease for one identity."""

    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, duration: int, renew_deadline: int,
                 retry: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.duration, self.renew_deadline, self.retry = duration, renew_deadline, retry
        self.clock = clock
        self._seen: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._seen_at = 0.0
        self._last_renew = 0.0
        self._stop = threading.Event()
        self._leading = threading.Event()

    def leading(self) -> bool:
        """True while the last renewal is recent enough to act on (kube/'s write gate)."""
        return self._leading.is_set()

    def try_once(self) -> bool:
        """One attempt to take or renew the Lease; True when we hold it now. Raises KubeError."""
        now = self.clock()
        lease = self.kube.get_lease(self.namespace, self.name)
        if lease is None:
            try:
                self.kube.create_lease(self.namespace, self.name, claimed_spec(None, self.identity, self.duration,
                                                                               time.time()))
            except KubeError as exc:
                if exc.status == 409:  # another candidate created it first
                    return False
                raise
            return True
        record = read_record(lease)
        if (record.holder, record.renew_time) != self._seen:
            self._seen, self._seen_at = (record.holder, record.renew_time), now
        if not may_take(record, self.identity, self._seen_at, now):
            return False
        try:
            self.kube.replace_lease(self.namespace, self.name, record.resource_version,
                                    claimed_spec(record, self.identity, self.duration, time.time()))
        except KubeError as exc:
            if exc.status == 409:  # someone else wrote it in between: they won this round
                return False
            raise
        return True

    def _attempt(self) -> bool:
        try:
            held = self.try_once()
        except KubeError as exc:
            LOOPS.failed(LOOP, exc)
            log.warning("leader election: %s", exc)
            return False
        LOOPS.finished(LOOP)
        return held

    def _pause(self) -> None:
        self._stop.wait(self.retry * random.uniform(0.9, 1.1))

    def acquire(self) -> None:
        """Block until this process holds the Lease (a standby spends its life here)."""
        LOOPS.register(LOOP, self.retry)
        log.info("leader election: %s wants Lease %s/%s", self.identity, self.namespace, self.name)
        announced = False
        while not self._stop.is_set():
            if self._attempt():
                self._last_renew = self.clock()
                self._leading.set()
                IS_LEADER.set(1)
                TRANSITIONS.inc()
                log.info("leader election: %s leads (Lease %s/%s)", self.identity, self.namespace, self.name)
                return
            if not announced and self._seen and self._seen[0]:
                log.info("leader election: standby; %s holds the Lease", self._seen[0])
                announced = True
            self._pause()

    def keep(self, on_lost: Callable[[str], None]) -> None:
        """Renew in a daemon thread; a watchdog pauses writing once no renewal succeeded within the deadline,
        a later renewal resumes it, and `on_lost` is called when another holder is seen."""

        def renew() -> None:
            while not self._stop.is_set():
                self._pause()
                if self._stop.is_set():
                    return
                if self._attempt():
                    self._last_renew = self.clock()
                    if not self._leading.is_set():
                        log.warning("leader election: Lease renewed, still ours: writing again")
                        self._leading.set()
                        IS_LEADER.set(1)
                elif self._seen and self._seen[0] not in ("", self.identity):
                    self._leading.clear()
                    on_lost(f"{self._seen[0]} took the Lease")
                    return

        def watchdog() -> None:
            while not self._stop.wait(0.25):
                late = self.clock() - self._last_renew
                if late > self.renew_deadline and self._leading.is_set():
                    self._leading.clear()
                    IS_LEADER.set(0)
                    log.warning("leader election: no renewal for %.1fs (deadline %ss): every write paused "
                                "until a renewal succeeds", late, self.renew_deadline)

        threading.Thread(target=renew, name="lease-renew", daemon=True).start()
        threading.Thread(target=watchdog, name="lease-watchdog", daemon=True).start()

    def release(self) -> None:
        """On a clean shutdown: stop renewing and hand the Lease back, so a standby takes over at once."""
        self._stop.set()
        self._leading.clear()
        LOOPS.unregister(LOOP)
        IS_LEADER.set(0)
        try:
            lease = self.kube.get_lease(self.namespace, self.name)
            if lease is None or read_record(lease).holder != self.identity:
                return
            record = read_record(lease)
            spec = {**claimed_spec(record, self.identity, 1, time.time()), "holderIdentity": ""}
            self.kube.replace_lease(self.namespace, self.name, record.resource_version, spec)
            log.info("leader election: released Lease %s/%s", self.namespace, self.name)
        except KubeError as exc:
            log.warning("leader election: could not release the Lease (the standby waits it out): %s", exc)


def exit_now(why: str) -> None:
    """Leadership is lost: stop acting at once. The kubelet (or the person) restarts us as a standby."""
    IS_LEADER.set(0)
    log.critical("leader election: lost leadership (%s); exiting so nothing more is done as leader", why)
    logging.shutdown()
    os._exit(1)
