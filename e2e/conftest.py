"""pytest fixtures for tests against the local cluster (e2e/cluster).

- `cluster` (session): starts `e2e/cluster up --with-prometheus` unless it is already up and returns a
  helpers.Cluster; if the cluster cannot start the tests FAIL with the reason (never skip). A cluster
  that a pytest session started is torn down by the last live pytest session to finish (sessions
  register in <state dir>/../.<name>.sessions/) unless MODELFLEET_KEEP_CLUSTER is set; a cluster a
  person started with `e2e/cluster up` is left running.
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
from operator_fixture import crd, operator  # noqa: F401  (fixtures: the CRD installed, the operator running)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


def _up() -> tuple[dict, bool]:
    """Run `e2e/cluster up --with-prometheus`; returns (state, whether this call started the cluster)."""
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
    return st, "already up" not in res.stderr


def _register_session() -> Path:
    """Mark this pytest process as a user of the cluster (before `up`), so that another session
    which started the cluster does not tear it down under us. Lives beside the state dir."""
    root = localcluster.layout().root
    d = root.parent / f".{root.name}.sessions"
    d.mkdir(parents=True, exist_ok=True)
    mine = d / str(os.getpid())
    mine.touch()
    return mine


def _other_sessions(mine: Path) -> list[str]:
    if not mine.parent.is_dir():
        return []
    return [p.name for p in mine.parent.iterdir()
            if p.name.isdigit() and p != mine and Path(f"/proc/{p.name}").exists()]


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    mine = _register_session()
    try:
        state, started_here = _up()
    except BaseException:
        mine.unlink(missing_ok=True)
        raise
    if started_here:
        (mine.parent / "started-by-pytest").touch()
    c = Cluster(state=state, started_here=started_here)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = c.kubeconfig
    yield c
    if previous is None:
        os.environ.pop("KUBECONFIG", None)
    else:
        os.environ["KUBECONFIG"] = previous
    mine.unlink(missing_ok=True)
    # The last session out stops a cluster that a pytest session started (a person's `up` is left alone).
    owned = mine.parent / "started-by-pytest"
    if (
        (started_here or owned.exists())
        and not os.environ.get("MODELFLEET_KEEP_CLUSTER")
        and localcluster.down(unless=lambda: bool(_other_sessions(mine))) == 0
        and not _other_sessions(mine)
    ):
        owned.unlink(missing_ok=True)


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
