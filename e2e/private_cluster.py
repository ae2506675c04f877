"""A cluster of a test module's own, for tests that break shared components (etcd, the apiserver).

    with private_cluster("verbs") as pc:      # `e2e/cluster up` in <MODELFLEET_CLUSTER_DIR>-verbs
        pc.restart("etcd")                     # `e2e/cluster restart etcd` on that cluster only
        pc.pid("etcd")                         # read from its state.json

Every verb runs the real CLI (`e2e/cluster ...`) with MODELFLEET_CLUSTER_DIR pointing at the private
state dir, so the session's shared cluster (the `cluster` fixture) is never touched. On leaving,
the cluster is brought down (kept with MODELFLEET_KEEP_CLUSTER, for a person to look at).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from helpers import CLUSTER_CLI, Cluster

sys.path.insert(0, str(Path(__file__).resolve().parent))

from localcluster import config, state


class PrivateCluster(Cluster):
    """A Cluster plus the fault verbs, bound to one state dir."""

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """Run `e2e/cluster ARGS` against this cluster; AssertionError with stderr when check fails."""
        env = dict(os.environ, MODELFLEET_CLUSTER_DIR=str(self.state_dir))
        res = subprocess.run([sys.executable, str(CLUSTER_CLI), *args], capture_output=True, text=True,
                             timeout=timeout, env=env)
        if check and res.returncode != 0:
            raise AssertionError(f"e2e/cluster {' '.join(args)} exited {res.returncode}:\n{res.stderr[-4000:]}")
        return res

    def stop(self, component: str, *, kill: bool = False) -> None:
        self.cli("stop", component, *(["--kill"] if kill else []))

    def start(self, component: str) -> None:
        self.cli("start", component)

    def restart(self, component: str, *, kill: bool = False) -> None:
        self.cli("restart", component, *(["--kill"] if kill else []))

    def fresh_state(self) -> dict[str, Any]:
        """state.json as it is now (pids change with every start)."""
        st = state.load(self.state_dir / "state.json")
        assert st is not None, f"no state.json in {self.state_dir}"
        return st

    def pid(self, component: str) -> int:
        return int(self.fresh_state()["pids"][component])


def private_dir(suffix: str) -> Path:
    """<the configured state dir>-<suffix>: beside the shared one, never the same."""
    return Path(f"{config.state_dir()}-{suffix}")


@contextmanager
def private_cluster(suffix: str, *args: str) -> Iterator[PrivateCluster]:
    """`e2e/cluster up --with-prometheus ARGS` in a state dir of its own; `down` afterwards."""
    root = private_dir(suffix)
    env = dict(os.environ, MODELFLEET_CLUSTER_DIR=str(root))
    res = subprocess.run([sys.executable, str(CLUSTER_CLI), "up", "--with-prometheus", *args],
                         capture_output=True, text=True, env=env, timeout=600)
    if res.returncode != 0:
        raise AssertionError(f"private cluster in {root} could not start (exit {res.returncode}):\n"
                             f"{res.stderr[-6000:]}")
    st = state.load(root / "state.json")
    assert st is not None and st.get("complete"), f"`up` succeeded but {root}/state.json is incomplete"
    pc = PrivateCluster(state=st, started_here=True)
    try:
        yield pc
    finally:
        if not os.environ.get("MODELFLEET_KEEP_CLUSTER"):
            subprocess.run([sys.executable, str(CLUSTER_CLI), "down"], capture_output=True, text=True,
                           env=env, timeout=120)
