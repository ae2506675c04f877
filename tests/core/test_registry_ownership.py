"""The registry keeps the operator's own children apart from look-alikes that carry the same label (issue 10)."""

from __future__ import annotations

from typing import Any

from modelfleet.registry import DEPLOYMENT, POD, REPLICASET, Registry


def obj(name: str, uid: str, owner: str | None = None, label: str = "m") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "n", "uid": uid, "labels": {"modelfleet.io/deployment": label}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True}]
    return {"metadata": meta}


def test_a_look_alike_deployment_does_not_replace_ours() -> None:
    reg = Registry()
    reg.observe_llm({"type": "ADDED", "object": obj("m", "llm-uid")})
    reg.observe(DEPLOYMENT, {"type": "ADDED", "object": obj("m", "dep-uid", owner="llm-uid")})
    reg.observe(DEPLOYMENT, {"type": "ADDED", "object": obj("m-evil", "evil-uid")})
    (view,) = reg.snapshot()
    assert view.deployment is not None and view.deployment["metadata"]["uid"] == "dep-uid"


def test_only_pods_of_our_replicasets_are_owned() -> None:
    reg = Registry()
    reg.observe_llm({"type": "ADDED", "object": obj("m", "llm-uid")})
    reg.observe(DEPLOYMENT, {"type": "ADDED", "object": obj("m", "dep-uid", owner="llm-uid")})
    reg.observe(REPLICASET, {"type": "ADDED", "object": obj("m-abc", "rs-uid", owner="dep-uid")})
    reg.observe(REPLICASET, {"type": "ADDED", "object": obj("m-evil", "evil-rs", owner="someone-else")})
    for name, owner in (("m-abc-1", "rs-uid"), ("m-evil-1", "evil-rs"), ("bare", None)):
        reg.observe(POD, {"type": "ADDED", "object": obj(name, f"{name}-uid", owner=owner)})
    (view,) = reg.snapshot()
    assert [p["metadata"]["name"] for p in view.owned_pods()] == ["m-abc-1"]


def test_a_deployment_not_controlled_by_the_llm_owns_no_pods() -> None:
    reg = Registry()
    reg.observe_llm({"type": "ADDED", "object": obj("m", "llm-uid")})
    # Named like ours but made by someone else (e.g. before the LLMDeployment existed): not ours.
    reg.observe(DEPLOYMENT, {"type": "ADDED", "object": obj("m", "dep-uid", owner=None)})
    reg.observe(REPLICASET, {"type": "ADDED", "object": obj("m-abc", "rs-uid", owner="dep-uid")})
    reg.observe(POD, {"type": "ADDED", "object": obj("m-abc-1", "p", owner="rs-uid")})
    (view,) = reg.snapshot()
    assert view.owned_pods() == []
