"""Leader election: who may take the Lease when, and two electors racing over one Lease store.

The Lease store here is a FAKE (FakeLeaseStore): an in-memory stand-in with the API server's
optimistic-concurrency rule (a write with a stale resourceVersion gets 409), so that the decision logic
can be driven through every interleaving with a simulated clock. Real Leases on a real API server, with
processes killed, are exercised by e2e/test_faults*.
"""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet.kube import KubeError
from modelfleet.leader import LeaderElector, LeaseRecord, claimed_spec, may_take


def rec(holder: str, duration: float = 10, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, duration, "2026-01-01T00:00:00.000000Z", "", transitions, "1")


@pytest.mark.parametrize(
    ("record", "observed_at", "now", "ok"),
    [
        (rec(""), 0, 0, True),  # released: take it at once
        (rec("me"), 0, 100, True),  # ours: renew
        (rec("other"), 0, 9.9, False),  # renewed 9.9 s ago (our clock) < 10 s
        (rec("other"), 0, 10.1, True),  # expired
        (rec("other", duration=30), 0, 20, False),  # the holder's own duration counts, not ours
    ],
)
def test_may_take(record: LeaseRecord, observed_at: float, now: float, ok: bool) -> None:
    assert may_take(record, "me", observed_at, now) is ok


def test_claimed_spec_counts_transitions_only_on_a_change_of_holder() -> None:
    assert claimed_spec(None, "a", 10, 0)["leaseTransitions"] == 0
    assert claimed_spec(rec("a", transitions=3), "a", 10, 0)["leaseTransitions"] == 3
    assert claimed_spec(rec("b", transitions=3), "a", 10, 0)["leaseTransitions"] == 4
    assert claimed_spec(rec("", transitions=3), "a", 10, 0)["leaseTransitions"] == 3


class FakeLeaseStore:
    """FAKE Lease API (see the module docstring): get/create/replace with resourceVersion checks."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = 0

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        return None if self.lease is None else {**self.lease, "metadata": {"resourceVersion": str(self.rv)}}

    def create_lease(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise KubeError("exists", 409, True)
        self.rv += 1
        self.lease = {"spec": spec}
        return self.lease

    def replace_lease(self, namespace: str, name: str, rv: str, spec: dict[str, Any]) -> dict[str, Any]:
        if rv != str(self.rv):
            raise KubeError("conflict", 409, True)
        self.rv += 1
        self.lease = {"spec": spec}
        return self.lease


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def elector(store: FakeLeaseStore, me: str, clock: Clock) -> LeaderElector:
    return LeaderElector(store, "ns", "lease", me, 10, 6, 2, clock=clock)  # type: ignore[arg-type]


def test_exactly_one_leads_and_the_standby_takes_over_after_the_duration() -> None:
    store, clock = FakeLeaseStore(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    assert a.try_once() is True
    assert b.try_once() is False
    # a renews every 2 s for a while: b never gets it.
    for _ in range(10):
        clock.t += 2
        assert a.try_once() is True
        assert b.try_once() is False
    # a dies (stops renewing). b watches the same renewTime for 10 s of its own clock.
    died = clock.t
    while not b.try_once():
        clock.t += 2
        assert clock.t - died <= 12, "the standby must lead within duration + one retry"
    assert store.lease is not None and store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1
    # a comes back (e.g. after a partition): it must see it lost.
    assert a.try_once() is False


def test_a_lost_race_for_the_same_resource_version_is_not_leadership() -> None:
    store, clock = FakeLeaseStore(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    a.try_once()
    store.lease["spec"]["holderIdentity"] = ""  # type: ignore[index]  # a released it
    # b reads, then a re-takes before b writes: b's write carries a stale resourceVersion.
    original = store.get_lease

    def get_then_race(namespace: str, name: str) -> dict[str, Any] | None:
        seen = original(namespace, name)
        store.get_lease = original  # type: ignore[method-assign]
        assert a.try_once() is True
        return seen

    store.get_lease = get_then_race  # type: ignore[method-assign]
    assert b.try_once() is False
    assert store.lease["spec"]["holderIdentity"] == "a"  # type: ignore[index]


def test_release_hands_the_lease_back() -> None:
    store, clock = FakeLeaseStore(), Clock()
    a, b = elector(store, "a", clock), elector(store, "b", clock)
    a.try_once()
    assert b.try_once() is False
    a.release()
    assert b.try_once() is True, "after a clean release the standby takes over at its next retry"


class FlakyLeaseStore(FakeLeaseStore):
    """The FAKE store with an API server that can be switched off (every call: no answer)."""

    down = False

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self.down:
            raise KubeError("no answer from the API server", 0, True)
        return super().get_lease(namespace, name)


def _until(predicate: Any, timeout: float = 10) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_an_unreachable_api_pauses_writes_and_a_renewal_resumes_them() -> None:
    store, clock = FlakyLeaseStore(), Clock()
    lost: list[str] = []
    a = LeaderElector(store, "ns", "lease", "a", 10, 6, 1, clock=clock)  # type: ignore[arg-type]
    a.acquire()
    a.keep(on_lost=lost.append)
    try:
        assert a.leading()
        store.down = True
        clock.t += 6.5  # past the renew deadline without a renewal
        assert _until(lambda: not a.leading()), "writes must pause once the deadline passed"
        store.down = False  # the API server is back; nobody took the Lease meanwhile
        assert _until(a.leading), "a successful renewal must resume writing without a restart"
        assert lost == []
        # Now someone else holds it (e.g. we were partitioned for longer than the duration).
        store.lease["spec"]["holderIdentity"] = "b"  # type: ignore[index]
        store.rv += 1
        assert _until(lambda: bool(lost)) and "b took the Lease" in lost[0]
        assert not a.leading()
    finally:
        a.release()


def test_the_write_gate_refuses_before_sending() -> None:
    from kubernetes import client

    from modelfleet.kube import Kube

    configuration = client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # nothing there: a sent request would fail with status 0
    kube = Kube(client.ApiClient(configuration), timeout=(1, 1), may_write=lambda: False)
    with pytest.raises(KubeError) as info:
        kube.scale("n", "m", 3)
    assert info.value.status is None and info.value.retryable and "not sent" in str(info.value)
