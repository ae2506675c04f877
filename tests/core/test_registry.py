"""Registry: watch events plus mark-and-sweep from a LIST, so relists leave no ghosts and lose no news."""

from __future__ import annotations

from typing import Any

import pytest

from modelfleet import api
from modelfleet.registry import DEPLOYMENT, LLM, POD, REPLICASET, Registry, namespace_matcher


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
    reg.observe_pod(ev("ADDED", pod("ghost-pod", "a")))  # an unschedulable ghost would block scale-up
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
    reg.observe_deployment(ev("ADDED", pod("a", "a") | {"kind": "Deployment"}))
    reg.observe_pod(ev("ADDED", pod("a-1", "a")))
    assert reg.observe_llm(ev("DELETED", llm("a"))) is True
    assert reg.size() == {LLM: 0, DEPLOYMENT: 0, POD: 0, REPLICASET: 0}


def test_observe_pod_returns_the_previous_body() -> None:
    reg = Registry()
    assert reg.observe_pod(ev("ADDED", pod("p", "a"))) is None
    assert reg.observe_pod(ev("MODIFIED", pod("p", "a")))["metadata"]["name"] == "p"
    assert reg.observe_pod(ev("DELETED", pod("p", "a"))) is not None
    assert reg.size()[POD] == 0


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
