"""Fixtures of the fault-injection suite (e2e/faults/): `fc`, the suite's private cluster, and `ops`,
the operators of one test (killed at its end; their logs, and the dumps of the test's namespaces, printed
on failure). The helpers live in e2e/faultkit.py."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from faultkit import _NAMESPACES, Operators, fault_cluster
from private_cluster import PrivateCluster


@pytest.fixture
def ops(request: pytest.FixtureRequest) -> Iterator[Operators]:
    """Operators of one test on the fault cluster; on failure their log tails are printed."""
    pc = fault_cluster(request.config)
    func, _, param = request.node.name.removeprefix("test_").partition("[")
    name = re.sub(r"[^a-z0-9]+", "-", f"{func[:30]}-{param}".lower()).strip("-")  # lease and log names
    o = Operators(pc, name)
    yield o
    o.close()
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and rep.failed
    if failed:
        print(f"\n===== operators =====\n{o.tails()}")
    while _NAMESPACES:
        ns = _NAMESPACES.pop()
        if failed:
            print(f"\n===== namespace {ns} after the failure =====\n{pc.dump(ns)}")
        pc.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def fc(request: pytest.FixtureRequest) -> PrivateCluster:
    """The fault suite's private cluster."""
    return fault_cluster(request.config)
