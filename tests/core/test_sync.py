"""sync: a deleted (or deleting) LLMDeployment is never reconciled, and a stuck reconcile cannot park others.

RecordingKube is a FAKE for the API (named as such): it answers get_llm from a dict and fails the test on
any write, because the property under test is "no call is made", which a real cluster cannot show directly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from modelfleet import sync
from modelfleet.runtime import RUNTIME


class RecordingKube:
    """FAKE API client (see module docstring)."""

    def __init__(self, llm: dict[str, Any] | None) -> None:
        self.llm = llm
        self.calls: list[str] = []

    def get_llm(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append("get_llm")
        return self.llm

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected API call {name}: a deleted object must not be reconciled")


@pytest.fixture
def fake_kube(request: pytest.FixtureRequest) -> Iterator[RecordingKube]:
    kube = RecordingKube(request.param)
    saved = RUNTIME._kube
    RUNTIME._kube = kube  # type: ignore[assignment]
    yield kube
    RUNTIME._kube = saved


STALE = {"metadata": {"name": "m", "namespace": "n", "uid": "u"}, "spec": {"model": {"uri": "hf://a/b"}}}
DELETING = {"metadata": {**STALE["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": STALE["spec"]}


@pytest.mark.parametrize("fake_kube", [None], indirect=True)
def test_resync_takes_the_registry_body_and_leaves_a_deleted_object_alone(fake_kube: RecordingKube) -> None:
    # Issue 13: the resync reads the watch cache, not the API (0 GETs). An object the registry no longer
    # holds (its DELETED event, or the relist's sweep of a ghost) or holds as being deleted is left alone.
    assert sync.reconcile_one("n", "m", None) is None  # unknown to the registry
    RUNTIME.registry.observe_llm({"type": "ADDED", "object": DELETING})
    try:
        assert sync.reconcile_one("n", "m", None) is None
    finally:
        RUNTIME.registry.observe_llm({"type": "DELETED", "object": DELETING})
    assert fake_kube.calls == []


@pytest.mark.parametrize(
    ("given", "cached", "winner"),
    [
        ("5", "7", "cached"),  # the registry holds our own newer write
        ("9", "7", "given"),  # kopf's body is newer than the registry's
        ("7", "7", "cached"),
        (None, "7", "cached"),  # the resync passes no body
    ],
)
def test_the_freshest_body_wins(given: str | None, cached: str, winner: str) -> None:
    def body(rv: str) -> dict[str, Any]:
        return {"metadata": {**STALE["metadata"], "resourceVersion": rv}, "tag": rv}

    mine = body(given) if given else None
    chosen = sync.freshest(mine, body(cached))
    assert chosen is not None and chosen["tag"] == (given if winner == "given" else cached)


@pytest.mark.parametrize("fake_kube", [None], indirect=True)
def test_a_body_with_a_deletion_timestamp_is_not_reconciled(fake_kube: RecordingKube) -> None:
    assert sync.reconcile_one("n", "m", DELETING) is None
    assert fake_kube.calls == []


@pytest.mark.parametrize("fake_kube", [None], indirect=True)
def test_a_held_lock_gives_up_after_the_bounded_wait(fake_kube: RecordingKube) -> None:
    held = threading.Event()
    release = threading.Event()

    def stuck() -> None:
        with sync._locked("n", "m", 1):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=stuck)
    thread.start()
    held.wait(5)
    try:
        with pytest.raises(sync.Busy) as info:
            sync.reconcile_one("n", "m", None, wait=0.2)
        assert info.value.retryable
    finally:
        release.set()
        thread.join()
    sync.forget("n", "m")
    assert ("n", "m") not in sync._LOCKS, "a deleted object's lock must be pruned"
