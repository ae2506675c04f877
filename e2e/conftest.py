"""pytest fixtures for tests against the local cluster (e2e/cluster).

- `cluster` (session): starts `e2e/cluster up --with-prometheus` unless it is already up and returns a
  helpers.Cluster; if the cluster cannot start the tests FAIL with the reason (never skip). It is torn
  down at the end only if this session started it and MODELFLEET_KEEP_CLUSTER is unset.
- `namespace` (function): a fresh namespace per test, deleted afterwards; on failure its objects,
  pod descriptions and Events are printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from helpers import CLUSTER_CLI, Cluster
from localcluster import cluster as localcluster


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _up() -> tuple[dict, bool]:
    was_up = localcluster.is_up() is not None
    res = subprocess.run([sys.executable, str(CLUSTER_CLI), "up", "--with-prometheus"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(
            f"the local cluster could not start: `e2e/cluster up --with-prometheus` exited {res.returncode}\n"
            f"{res.stderr[-6000:]}", pytrace=False)
    st = localcluster.is_up()
    if st is None:
        pytest.fail(f"`e2e/cluster up` succeeded but the cluster is not healthy:\n{res.stderr[-4000:]}",
                    pytrace=False)
    last = res.stdout.strip().splitlines()[-1]
    assert last == f"KUBECONFIG={st['kubeconfig']}", res.stdout
    return st, not was_up


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    state, started_here = _up()
    c = Cluster(state=state, started_here=started_here)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = c.kubeconfig
    yield c
    if previous is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = previous
    if started_here and not os.environ.get("MODELFLEET_KEEP_CLUSTER"):
        subprocess.run([sys.executable, str(CLUSTER_CLI), "down"], capture_output=True, text=True)


def _namespace_name(nodeid: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", nodeid.split("::")[-1].lower()).strip("-")
    return f"t-{base[:40].strip('-')}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _namespace_name(request.node.nodeid)
    cluster.kubectl("create", "namespace", name)
    yield name
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(f"\n===== namespace {name} after the failure =====\n{cluster.dump(name)}")
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
