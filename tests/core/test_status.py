"""Status: observed children + fit verdict -> conditions, phase, events."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import status

FITS = status.FitVerdict(True, "Fits", "fits", {"kvCacheTokens": 1000})
NOFIT = status.FitVerdict(False, "DoesNotFit", "needs 141 GiB, has 72 GiB; set gpu.count: 2")


def dep(
    replicas: int = 2, ready: int = 2, updated: int | None = None, gen: int = 1, seen: int = 1, deadline: bool = False
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "observedGeneration": seen,
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "updatedReplicas": replicas if updated is None else updated,
    }
    if deadline:
        st["conditions"] = [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet has timed out progressing.",
            }
        ]
    return {"metadata": {"generation": gen}, "spec": {"replicas": replicas}, "status": st}


PENDING_POD = {
    "metadata": {"name": "llama-abc"},
    "status": {
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/4 nodes are available: 4 Insufficient nvidia.com/gpu.",
            }
        ]
    },
}
CRASH_POD = {
    "metadata": {"name": "llama-def"},
    "status": {"containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]},
}


def conds(result: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in result["conditions"]}


@pytest.mark.parametrize(
    ("fit", "observed", "desired", "phase", "expect"),
    [
        (
            FITS,
            status.Observed(None, []),
            2,
            "Progressing",
            {"Ready": ("False", "NoReplicaReady"), "Progressing": ("True", "Creating"), "Fits": ("True", "Fits")},
        ),
        (
            FITS,
            status.Observed(dep(2, 2), []),
            2,
            "Ready",
            {
                "Ready": ("True", "ReplicasReady"),
                "Progressing": ("False", "RolloutComplete"),
                "Degraded": ("False", "AsExpected"),
            },
        ),
        (
            FITS,
            status.Observed(dep(2, 1, updated=1), []),
            2,
            "Progressing",
            {"Ready": ("True", "ReplicasReady"), "Progressing": ("True", "RollingOut")},
        ),
        (
            FITS,
            status.Observed(dep(2, 0, gen=2, seen=1), []),
            2,
            "Progressing",
            {"Progressing": ("True", "RollingOut")},
        ),
        (
            FITS,
            status.Observed(dep(2, 1), [PENDING_POD]),
            2,
            "Degraded",
            {"Degraded": ("True", "InsufficientGPUs"), "Ready": ("True", "ReplicasReady")},
        ),
        (
            FITS,
            status.Observed(dep(1, 0), [CRASH_POD]),
            1,
            "Degraded",
            {"Degraded": ("True", "CrashLoopBackOff"), "Ready": ("False", "NoReplicaReady")},
        ),
        (
            FITS,
            status.Observed(dep(1, 0, deadline=True), []),
            1,
            "Degraded",
            {"Degraded": ("True", "ProgressDeadlineExceeded")},
        ),
        (
            NOFIT,
            status.Observed(None, []),
            1,
            "DoesNotFit",
            {"Fits": ("False", "DoesNotFit"), "Progressing": ("False", "FitCheckFailed")},
        ),
        (
            NOFIT,
            status.Observed(dep(1, 1), [], rollout_held=True),
            1,
            "Degraded",
            {
                "Fits": ("False", "DoesNotFit"),
                "Progressing": ("False", "RolloutHeld"),
                "Ready": ("True", "ReplicasReady"),
            },
        ),
        (FITS, status.Observed(dep(0, 0), []), 0, "ScaledToZero", {"Ready": ("False", "ScaledToZero")}),
    ],
    ids=[
        "new",
        "ready",
        "rolling",
        "unseen-generation",
        "no-gpus",
        "crashloop",
        "deadline",
        "nofit-new",
        "nofit-held",
        "zero",
    ],
)
def test_compute(
    fit: status.FitVerdict, observed: status.Observed, desired: int, phase: str, expect: dict[str, tuple[str, str]]
) -> None:
    result = status.compute(3, "http://x", "sel", desired, fit, observed)
    assert result["phase"] == phase, result
    got = conds(result)
    for kind, want in expect.items():
        assert got[kind] == want, (kind, result["conditions"])
    assert all(c["observedGeneration"] == 3 for c in result["conditions"])
    assert result["observedGeneration"] == 3


def test_unschedulable_message_is_the_schedulers() -> None:
    result = status.compute(1, "e", "s", 1, FITS, status.Observed(dep(1, 0), [PENDING_POD]))
    degraded = next(c for c in result["conditions"] if c["type"] == "Degraded")
    assert "Insufficient nvidia.com/gpu" in degraded["message"]


def test_merge_keeps_transition_time_and_foreign_conditions() -> None:
    old = [
        {"type": "Ready", "status": "True", "reason": "ReplicasReady", "message": "1/1", "lastTransitionTime": "T0"},
        {
            "type": "MetricsAvailable",
            "status": "False",
            "reason": "NoSeries",
            "message": "",
            "lastTransitionTime": "T0",
        },
    ]
    new = [
        {"type": "Ready", "status": "True", "reason": "ReplicasReady", "message": "2/2"},
        {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": ""},
    ]
    merged = {c["type"]: c for c in status.merge_conditions(old, new, "T1")}
    assert merged["Ready"]["lastTransitionTime"] == "T0"
    assert merged["Degraded"]["lastTransitionTime"] == "T1"
    assert merged["MetricsAvailable"]["reason"] == "NoSeries"


def test_diff_is_empty_when_nothing_changed() -> None:
    wanted = status.compute(1, "e", "s", 1, FITS, status.Observed(dep(1, 1), []))
    wanted["conditions"] = status.merge_conditions([], wanted["conditions"], "T")
    again = status.compute(1, "e", "s", 1, FITS, status.Observed(dep(1, 1), []))
    again["conditions"] = status.merge_conditions(wanted["conditions"], again["conditions"], "T2")
    assert status.diff(wanted, again) == {}
    assert status.diff({}, wanted) == wanted


@pytest.mark.parametrize(
    ("before", "after", "reasons"),
    [
        ([], [{"type": "Ready", "status": "True", "reason": "ReplicasReady", "message": "1/1"}], ["Ready"]),
        (
            [{"type": "Ready", "status": "True", "reason": "ReplicasReady"}],
            [{"type": "Ready", "status": "True", "reason": "ReplicasReady", "message": "2/2"}],
            [],
        ),
        (
            [],
            [{"type": "Degraded", "status": "True", "reason": "InsufficientGPUs", "message": "m"}],
            ["InsufficientGPUs"],
        ),
        (
            [{"type": "Degraded", "status": "True", "reason": "InsufficientGPUs"}],
            [{"type": "Degraded", "status": "False", "reason": "AsExpected", "message": "ok"}],
            ["Recovered"],
        ),
        ([], [{"type": "Fits", "status": "False", "reason": "DoesNotFit", "message": "m"}], ["DoesNotFit"]),
        (
            [],
            [
                {"type": "Degraded", "status": "True", "reason": "DoesNotFit", "message": "m"},
                {"type": "Fits", "status": "False", "reason": "DoesNotFit", "message": "m"},
            ],
            ["DoesNotFit"],
        ),
        ([], [{"type": "Degraded", "status": "False", "reason": "AsExpected", "message": ""}], []),
    ],
)
def test_transition_events(before: list[dict[str, Any]], after: list[dict[str, Any]], reasons: list[str]) -> None:
    assert [e.reason for e in status.transition_events(before, after)] == reasons


# What the Deployment controller writes when its ReplicaSet cannot create pods (copied from a real
# `kubectl get deploy -o yaml` under a GPU ResourceQuota of 2 with 4 requested).
QUOTA_MESSAGE = (
    'pods "llama-7d9c-x2x" is forbidden: exceeded quota: gpus, requested: requests.nvidia.com/gpu=4, '
    "used: requests.nvidia.com/gpu=0, limited: requests.nvidia.com/gpu=2"
)


def failing_dep(replicas: int = 2) -> dict[str, Any]:
    d = dep(replicas, 0)
    d["status"].update(replicas=0, readyReplicas=0, availableReplicas=0, updatedReplicas=0)
    d["status"]["conditions"] = [
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": QUOTA_MESSAGE,
         "lastTransitionTime": "2026-11-23T10:00:00Z"},
    ]
    return d


def test_replica_failure_is_degraded_with_the_apis_own_message() -> None:
    out = status.compute(1, "e", "s", 2, FITS, status.Observed(failing_dep(), []))
    degraded = next(c for c in out["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "FailedCreate")
    assert QUOTA_MESSAGE in degraded["message"]
    assert out["phase"] == "Degraded"
    events = status.transition_events([], out["conditions"])
    assert any(e.type == "Warning" and e.reason == "FailedCreate" and QUOTA_MESSAGE in e.message for e in events)


def test_a_rejected_child_is_degraded_and_says_so_once() -> None:
    why = "the API server refused Deployment m (field spec.template.spec.priorityClassName): no such class"
    out = status.compute(1, "e", "s", 1, FITS, status.Observed(dep(1, 1), [], rejected=why))
    degraded = next(c for c in out["conditions"] if c["type"] == "Degraded")
    assert (degraded["status"], degraded["reason"], degraded["message"]) == ("True", "ChildRejected", why)
    first = status.transition_events([], out["conditions"])
    assert [e.reason for e in first if e.type == "Warning"] == ["ChildRejected"]
    again = status.transition_events(out["conditions"], out["conditions"])
    assert again == [], "a repeat of the same refusal must not post another Event"


@pytest.mark.parametrize(
    ("pod", "state"),
    [
        ({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "ready"),
        (PENDING_POD, "unschedulable"),
        (CRASH_POD, "starting"),
        ({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"},
          "status": {"conditions": [{"type": "Ready", "status": "True"}]}}, "gone"),
        ({"status": {"phase": "Failed"}}, "gone"),
        ({}, "starting"),
    ],
    ids=["ready", "unschedulable", "crashloop", "terminating", "failed", "empty"],
)
def test_classify_pod(pod: dict[str, Any], state: str) -> None:
    assert status.classify_pod(pod) == state


def test_missing_pods_counts_replicas_without_any_pod() -> None:
    assert status.missing_pods(failing_dep(4), [PENDING_POD]) == 3
    assert status.missing_pods(failing_dep(1), [PENDING_POD, CRASH_POD]) == 0
    assert status.create_failure(failing_dep()) == status.CreateFailure(
        "FailedCreate", QUOTA_MESSAGE, "2026-11-23T10:00:00Z"
    )
    assert status.create_failure(dep()) is None
