"""Registry: watch events plus mark-and-sweep from a LIST, so relists leave no ghosts and lose no news."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import api
from modelfleet.registry import DEPLOYMENT, LLM, POD, REPLICASET, SERVICE, Registry, namespace_matcher, older, slim


def llm(name: str, ns: str = "n", rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv}, "spec": {}}


def pod(name: str, owner: str, ns: str = "n") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns, "labels": {api.DEPLOYMENT_LABEL: owner}}}


def ev(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "object": obj}


def names(reg: Registry) -> set[str]:
    return {v.llm["metadata"]["name"] for v in reg.snapshot()}


def test_relist_drops_ghosts_that_no_event_removed() -> None:
    reg = Registry()
    reg.observe_llm(ev("ADDED", llm("a")))
    reg.observe_llm(ev("ADDED", llm("ghost")))
    reg.observe(POD, ev("ADDED", pod("ghost-pod", "a")))  # an unschedulable ghost would block scale-up
    mark = reg.mark()
    removed = reg.replace_from_list(mark, [(LLM, llm("a"))])
    assert removed == [("n", "ghost")]
    assert names(reg) == {"a"}
    assert reg.snapshot()[0].pods == []


def test_relist_adds_what_the_watch_missed_and_refreshes_stale_bodies() -> None:
    reg = Registry()
    reg.observe_llm(ev("ADDED", llm("a", rv="1")))
    mark = reg.mark()
    reg.replace_from_list(mark, [(LLM, llm("a", rv="9")), (LLM, llm("b")), (POD, pod("b-1", "b"))])
    views = {v.llm["metadata"]["name"]: v for v in reg.snapshot()}
    assert set(views) == {"a", "b"} and views["a"].llm["metadata"]["resourceVersion"] == "9"
    assert [p["metadata"]["name"] for p in views["b"].pods] == ["b-1"]


def test_events_during_the_list_win_over_it() -> None:
    reg = Registry()
    reg.observe_llm(ev("ADDED", llm("old")))
    mark = reg.mark()
    # While the LIST runs: "new" is created and "old" changes; "gone" is deleted after the LIST saw it.
    reg.observe_llm(ev("ADDED", llm("new")))
    reg.observe_llm(ev("MODIFIED", llm("old", rv="5")))
    reg.observe_llm(ev("ADDED", llm("gone")))
    reg.observe_llm(ev("DELETED", llm("gone")))
    listed = [(LLM, llm("old", rv="4")), (LLM, llm("gone"))]  # the LIST predates all of it
    assert reg.replace_from_list(mark, listed) == []
    views = {v.llm["metadata"]["name"]: v for v in reg.snapshot()}
    assert set(views) == {"old", "new"}, "a deletion seen during the LIST must not be undone by it"
    assert views["old"].llm["metadata"]["resourceVersion"] == "5"


def test_deleting_an_llm_prunes_its_children_and_pod_map() -> None:
    reg = Registry()
    reg.observe_llm(ev("ADDED", llm("a")))
    reg.observe(DEPLOYMENT, ev("ADDED", pod("a", "a") | {"kind": "Deployment"}))
    reg.observe(POD, ev("ADDED", pod("a-1", "a")))
    assert reg.observe_llm(ev("DELETED", llm("a"))) is True
    assert reg.size() == {LLM: 0, DEPLOYMENT: 0, POD: 0, SERVICE: 0, REPLICASET: 0}


def test_observe_pod_returns_the_previous_body() -> None:
    reg = Registry()
    assert reg.observe(POD, ev("ADDED", pod("p", "a"))) is None
    assert reg.observe(POD, ev("MODIFIED", pod("p", "a")))["metadata"]["name"] == "p"
    assert reg.observe(POD, ev("DELETED", pod("p", "a"))) is not None
    assert reg.size()[POD] == 0


def versioned(obj: dict[str, Any], rv: str, uid: str = "u1") -> dict[str, Any]:
    return obj | {"metadata": obj["metadata"] | {"resourceVersion": rv, "uid": uid}}


@pytest.mark.parametrize(
    ("candidate", "held", "is_older"),
    [
        (("7", "u1"), ("9", "u1"), True),  # 7 < 9 as numbers
        (("10", "u1"), ("9", "u1"), False),  # 10 > 9 as numbers, though "10" < "9" as text
        (("9", "u1"), ("9", "u1"), False),
        (("7", "u2"), ("9", "u1"), False),  # a re-created object (new uid) is never "older"
        (("7", ""), ("9", ""), False),  # no uid: nothing to compare
        (("abc", "u1"), ("9", "u1"), False),  # opaque versions: newest seen wins
    ],
)
def test_older_compares_versions_of_one_object(
    candidate: tuple[str, str], held: tuple[str, str], is_older: bool
) -> None:
    assert older(versioned(llm("a"), *candidate), versioned(llm("a"), *held)) is is_older


def test_our_own_write_is_not_rolled_back_by_an_older_watch_event() -> None:
    reg = Registry()
    reg.observe_llm(ev("ADDED", versioned(llm("a"), "10")))
    reg.written(api.KIND, versioned(llm("a"), "12"))  # our status patch answered with rv 12
    reg.observe_llm(ev("MODIFIED", versioned(llm("a"), "11")))  # the watch catches up with an older state
    assert (reg.get_llm("n", "a") or {})["metadata"]["resourceVersion"] == "12"
    reg.observe_llm(ev("MODIFIED", versioned(llm("a"), "13")))
    assert (reg.get_llm("n", "a") or {})["metadata"]["resourceVersion"] == "13"


@pytest.mark.parametrize(("written_rv", "written_uid", "kept"), [
    ("14", "u1", False),  # our write answered at 14, before the deletion at 15: stale, no ghost
    ("15", "u1", False),  # the very state the deletion carried
    ("16", "u2", True),  # a new object of the same name (another uid): it is real
])
def test_a_write_answered_before_the_deletion_leaves_no_ghost(written_rv: str, written_uid: str, kept: bool) -> None:
    reg = Registry()
    reg.observe_llm(ev("ADDED", versioned(llm("a"), "10", "u1")))
    reg.observe_llm(ev("DELETED", versioned(llm("a"), "15", "u1")))
    reg.written(api.KIND, versioned(llm("a"), written_rv, written_uid))  # the answer arrives after the event
    assert ("a" in names(reg)) is kept


def test_a_relist_of_one_kind_sweeps_only_that_kind() -> None:
    reg = Registry()
    reg.observe_llm(ev("ADDED", llm("a")))
    reg.observe(DEPLOYMENT, ev("ADDED", pod("a", "a")))
    reg.observe(SERVICE, ev("ADDED", pod("a", "a")))
    reg.observe(POD, ev("ADDED", pod("a-old", "a")))
    reg.replace_from_list(reg.mark(), [(POD, pod("a-new", "a"))], kinds=[POD])
    assert reg.size() == {LLM: 1, DEPLOYMENT: 1, POD: 1, SERVICE: 1, REPLICASET: 0}
    assert [p["metadata"]["name"] for p in reg.list_pods("n", "a")] == ["a-new"]
    assert reg.get_child("Deployment", "n", "a") is not None and reg.get_child("Service", "n", "a") is not None
    assert reg.get_child("Service", "n", "b") is None


def test_cache_reads_are_per_owner() -> None:
    reg = Registry()
    for name, owner in (("a-1", "a"), ("a-2", "a"), ("b-1", "b")):
        reg.observe(POD, ev("ADDED", pod(name, owner)))
    reg.observe(POD, ev("ADDED", pod("a-1", "a", ns="other")))
    assert sorted(p["metadata"]["name"] for p in reg.list_pods("n", "a")) == ["a-1", "a-2"]
    assert reg.list_pods("n", "c") == []


@pytest.mark.parametrize(
    ("patterns", "namespace", "watched"),
    [
        ((), "anything", True),
        (("t-*",), "t-abc", True),
        (("t-*",), "default", False),
        (("a", "b"), "b", True),
        (("t-*", "!t-skip"), "t-skip", False),
        (("!kube-system",), "team", True),
    ],
)
def test_namespace_matcher(patterns: tuple[str, ...], namespace: str, watched: bool) -> None:
    assert namespace_matcher(patterns)(namespace) is watched


def test_cached_objects_drop_managed_fields_without_touching_the_callers_dict() -> None:
    reg = Registry()
    body = pod("p", "a")
    body["metadata"]["managedFields"] = [{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}]
    reg.observe(POD, ev("ADDED", body))
    listed = pod("a", "a")
    listed["metadata"]["managedFields"] = body["metadata"]["managedFields"]
    reg.replace_from_list(reg.mark(), [(DEPLOYMENT, listed)], kinds=[DEPLOYMENT])
    assert "managedFields" not in (reg.get_child("Deployment", "n", "a") or {})["metadata"]
    assert "managedFields" not in reg.list_pods("n", "a")[0]["metadata"]
    assert "managedFields" in body["metadata"], "the watch's own object must stay as it came"
    assert slim({"metadata": {"name": "x"}}) == {"metadata": {"name": "x"}}


@pytest.mark.parametrize(
    ("kind", "kept"),
    [
        (POD, ["apiVersion", "kind", "metadata", "status"]),  # status and the autoscaler read no pod spec
        (REPLICASET, ["apiVersion", "kind", "metadata"]),  # only its uid and owner link pods to a Deployment
        (DEPLOYMENT, ["apiVersion", "kind", "metadata", "spec", "status"]),  # the drift check reads the spec
        (SERVICE, ["apiVersion", "kind", "metadata", "spec", "status"]),
    ],
)
def test_cached_objects_keep_only_what_is_read(kind: str, kept: list[str]) -> None:
    body = {"apiVersion": "v1", "kind": "X", "spec": {"big": "x" * 100}, "status": {"phase": "Running"},
            "metadata": {"name": "a", "namespace": "n", "labels": {"modelfleet.io/deployment": "a"},
                         "annotations": {"modelfleet.io/last-handled-configuration": "{...}", "keep": "me"}}}
    reg = Registry()
    reg.observe(kind, ev("ADDED", body))
    ((held,),) = [[obj for (k, _, _, _), (_, obj) in reg._items.items() if k == kind]]
    assert sorted(held) == kept
    assert held["metadata"]["annotations"] == {"keep": "me"}, "kopf's copy of the last spec is not needed here"
    assert "spec" in body and "last-handled-configuration" in str(body), "the caller's dict must stay as it came"
