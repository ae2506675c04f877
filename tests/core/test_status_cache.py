"""status.py for the model cache: PVC + Job + download pods -> phase, CacheReady, events; what waits on it."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import status

FITS = status.FitVerdict(True, "Fits", "fits")
BOUND = {"status": {"phase": "Bound"}}
PENDING_PVC = {"status": {"phase": "Pending"}}
ACTIVE_JOB: dict[str, Any] = {"status": {"active": 1}}
COMPLETE_JOB = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
FAILED_JOB = {"status": {"failed": 2, "conditions": [
    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
     "message": "Job has reached the specified backoff limit"}]}}


def pod(
    name: str, phase: str, message: str = "", finished: str = "2026-01-01T00:00:00Z", code: int = 0
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}}
    if phase in ("Succeeded", "Failed"):
        state = {"terminated": {"exitCode": code, "reason": "Error" if code else "Completed", "message": message,
                                "finishedAt": finished}}
    return {"metadata": {"name": name, "creationTimestamp": finished},
            "status": {"phase": phase, "containerStatuses": [{"state": state}]}}


def obs(pvc: dict[str, Any] | None, job: dict[str, Any] | None, pods: list[dict[str, Any]] | None = None,
        **kw: Any) -> status.CacheObserved:
    return status.CacheObserved("cache-x", pvc, job, pods or [], 988_000_000, **kw)


@pytest.mark.parametrize(
    ("observed", "phase", "reason", "bytes_done", "error_has"),
    [
        (obs(None, None, refusal=("CacheTooSmall", "too small")), "Failed", "CacheTooSmall", None, None),
        (obs(None, None, storage_class_error='storageclasses.storage.k8s.io "x" not found'), "Pending",
         "StorageClassNotFound", None, None),
        (obs(None, None), "Pending", "Creating", None, None),
        (obs(PENDING_PVC, ACTIVE_JOB), "Pending", "VolumePending", None, None),
        (obs(BOUND, ACTIVE_JOB), "Pending", "DownloadPending", None, None),
        (obs(BOUND, ACTIVE_JOB, [pod("p1", "Running")]), "Downloading", "Downloading", None, None),
        (obs(BOUND, ACTIVE_JOB, [pod("p1", "Failed", "429 Too Many Requests", code=1)]), "Downloading",
         "DownloadRetrying", None, "429 Too Many Requests"),
        (obs(BOUND, COMPLETE_JOB, [pod("p1", "Succeeded", "bytes=988097824\n")]), "Ready", "Downloaded", 988097824,
         None),
        # the completed pod may be gone (deleted by hand): Ready without a byte count
        (obs(BOUND, COMPLETE_JOB), "Ready", "Downloaded", None, None),
        (obs(BOUND, FAILED_JOB, [pod("p1", "Failed", "old", "2026-01-01T00:00:00Z", 1),
                                 pod("p2", "Failed", "401 Unauthorized", "2026-01-01T00:01:00Z", 1)]),
         "Failed", "DownloadFailed", None, "pod p2: exit code 1: Error 401 Unauthorized"),
    ],
)
def test_cache_state(observed: status.CacheObserved, phase: str, reason: str, bytes_done: int | None,
                     error_has: str | None) -> None:
    state = status.cache_state(observed)
    assert (state.phase, state.reason, state.bytes_done) == (phase, reason, bytes_done), state
    if error_has is None:
        assert state.last_error is None
    else:
        assert state.last_error is not None and error_has in state.last_error


def test_failed_download_says_how_to_retry() -> None:
    state = status.cache_state(obs(BOUND, FAILED_JOB, [pod("p2", "Failed", "429", code=1)]))
    assert "BackoffLimitExceeded" in state.message and "kubectl delete job cache-x" in state.message


def test_cache_fields_leave_out_what_is_unknown() -> None:
    waiting = obs(BOUND, ACTIVE_JOB)
    assert status.cache_fields(waiting, status.cache_state(waiting)) == {
        "claim": "cache-x", "phase": "Pending", "bytesTotal": 988_000_000}


def compute(cache: status.CacheState | None, deployment: dict[str, Any] | None = None) -> dict[str, Any]:
    return status.compute(3, "http://x", "sel", 1, FITS, status.Observed(deployment, []), cache)


def cond(out: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in out["conditions"] if c["type"] == kind)


def test_replicas_wait_for_the_cache() -> None:
    out = compute(status.CacheState("Downloading", "Downloading", "pod p1 is downloading the model"))
    assert cond(out, "Progressing")["reason"] == "WaitingForCache" and "replicas start" in cond(out, "Progressing")[
        "message"]
    assert cond(out, "CacheReady")["status"] == "False" and cond(out, "Degraded")["status"] == "False"
    assert out["phase"] == "Progressing"


def test_a_failed_cache_degrades_and_stops_progress() -> None:
    out = compute(status.CacheState("Failed", "DownloadFailed", "download Job failed"))
    assert (cond(out, "Degraded")["reason"], cond(out, "Progressing")["status"]) == ("CacheFailed", "False")
    assert out["phase"] == "Degraded"


def test_no_cache_no_condition() -> None:
    assert all(c["type"] != "CacheReady" for c in compute(None)["conditions"])


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (None, ("False", "Creating"), []),
        (("False", "Creating"), ("False", "Downloading"), [("Normal", "DownloadStarted")]),
        (("False", "Downloading"), ("True", "Downloaded"), [("Normal", "CacheReady")]),
        (("False", "Downloading"), ("False", "DownloadFailed"), [("Warning", "DownloadFailed")]),
        (("False", "DownloadFailed"), ("False", "DownloadFailed"), []),  # no repeats
        (None, ("False", "StorageClassNotFound"), [("Warning", "StorageClassNotFound")]),
        (None, ("False", "CacheTooSmall"), [("Warning", "CacheTooSmall")]),
    ],
)
def test_cache_events(before: tuple[str, str] | None, after: tuple[str, str], expected: list[tuple[str, str]]) -> None:
    prev = [] if before is None else [{"type": "CacheReady", "status": before[0], "reason": before[1]}]
    new = [{"type": "CacheReady", "status": after[0], "reason": after[1], "message": "m"}]
    assert [(e.type, e.reason) for e in status.transition_events(prev, new)] == expected


def replica(phase: str, ready: bool = False, unschedulable: bool = False) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable"})
    return {"metadata": {"name": "p"}, "status": {"phase": phase, "conditions": conditions}}


@pytest.mark.parametrize(
    ("pods", "ready", "downloads", "expected"),
    [
        ([], 3, False, {"serving": 3, "loading": 0, "downloadingOrLoading": 0, "pending": 0}),
        ([replica("Running", ready=True), replica("Running"), replica("Pending", unschedulable=True)], 1, False,
         {"serving": 1, "loading": 1, "downloadingOrLoading": 0, "pending": 1}),
        ([replica("Running", ready=True), replica("Running"), replica("Pending")], 1, True,
         {"serving": 1, "loading": 0, "downloadingOrLoading": 1, "pending": 1}),
        ([replica("Succeeded"), replica("Running")], 0, False,
         {"serving": 0, "loading": 1, "downloadingOrLoading": 0, "pending": 0}),
    ],
)
def test_replica_phases(pods: list[dict[str, Any]], ready: int, downloads: bool, expected: dict[str, int]) -> None:
    assert status.replica_phases(pods, ready, downloads) == expected
