"""`e2e/cluster stop|start|restart COMPONENT` on a cluster of this module's own (never the shared one).

Each verb must bring the component back on the same port with the same data: a ConfigMap written
before an etcd or apiserver restart is read back after it, and Deployments still become Ready pods
after the controller-manager, the scheduler or kwok restarted. Every wait polls with a deadline.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from helpers import wait_for
from localcluster import procs
from private_cluster import PrivateCluster, private_cluster

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def pc() -> Iterator[PrivateCluster]:
    with private_cluster("verbs", "--nodes", "2") as c:
        yield c


def readyz(pc: PrivateCluster) -> bool:
    """The apiserver answers /readyz with 200 (kubectl: it needs etcd for that)."""
    return pc.kubectl("get", "--raw", "/readyz", check=False, timeout=10).returncode == 0


def configmap(pc: PrivateCluster, name: str, value: str) -> None:
    pc.kubectl("create", "configmap", name, "-n", "default", f"--from-literal=v={value}")


def read_configmap(pc: PrivateCluster, name: str) -> str:
    out = pc.kubectl("get", "configmap", name, "-n", "default", "-o", "json", timeout=10)
    return str(json.loads(out.stdout)["data"]["v"])


def status_line(pc: PrivateCluster, component: str) -> str:
    out = pc.cli("status", check=False).stdout
    lines = [ln for ln in out.splitlines() if ln.strip().startswith(component + " ")]
    assert lines, f"`status` lists no {component}:\n{out}"
    return lines[0]


@pytest.mark.parametrize("component", ["kube-controller-manager", "kube-scheduler", "kwok"])
def test_restarted_component_does_its_job(pc: PrivateCluster, component: str) -> None:
    """After the restart, a new Deployment still becomes a Ready pod on a fake node: the
    controller-manager makes the ReplicaSet and pod, the scheduler binds it, kwok runs it."""
    old = pc.pid(component)
    pc.restart(component, kill=True)
    assert pc.pid(component) != old and not procs.alive(old)
    name = f"after-{component}"
    pc.kubectl("create", "deployment", name, "-n", "default", "--image=busybox")

    def ready() -> bool:
        out = pc.kubectl("get", "deployment", name, "-n", "default", "-o", "json", timeout=10).stdout
        return bool(json.loads(out).get("status", {}).get("readyReplicas") == 1)

    # After a kwok restart a new pod waits ~40 s: the new kwok takes over the fake nodes only when
    # the old one's node leases (--node-lease-duration-seconds=40) have run out, as after a kubelet crash.
    wait_for(ready, timeout=90, message=f"Deployment {name} Ready after restarting {component}")


@pytest.mark.parametrize("component", ["etcd", "kube-apiserver"])
def test_restart_keeps_port_and_data(pc: PrivateCluster, component: str) -> None:
    value = uuid.uuid4().hex
    name = f"before-{component}-restart"
    configmap(pc, name, value)
    before = pc.fresh_state()
    pc.restart(component)
    after = pc.fresh_state()
    assert after["pids"][component] != before["pids"][component], "restart did not start a new process"
    assert procs.alive(after["pids"][component]) and not procs.alive(before["pids"][component])
    assert after["ports"] == before["ports"] and after["server"] == before["server"]
    wait_for(lambda: readyz(pc), timeout=60, message=f"the apiserver ready again after restarting {component}")
    assert read_configmap(pc, name) == value  # same data dir: nothing written before is lost
    assert "running" in status_line(pc, component)


def test_stop_shows_stopped_and_start_brings_it_back(pc: PrivateCluster) -> None:
    configmap(pc, "before-stop", "kept")
    old = pc.pid("kube-apiserver")
    pc.stop("kube-apiserver")
    assert not procs.alive(old)
    status = pc.cli("status", check=False)
    assert status.returncode == 1, status.stdout  # not healthy while a component is stopped
    assert "stopped" in status_line(pc, "kube-apiserver"), status.stdout
    assert "stopped on purpose: kube-apiserver" in status.stdout
    assert pc.fresh_state()["stopped"] == ["kube-apiserver"]
    refused = pc.kubectl("get", "ns", check=False, timeout=20)
    assert refused.returncode != 0 and "refused" in refused.stderr, refused.stderr
    pc.start("kube-apiserver")
    assert pc.pid("kube-apiserver") != old and not pc.fresh_state().get("stopped")
    wait_for(lambda: readyz(pc), timeout=60, message="the apiserver ready after start")
    assert read_configmap(pc, "before-stop") == "kept"
    assert pc.cli("status").returncode == 0


def test_start_refuses_when_a_dependency_is_stopped(pc: PrivateCluster) -> None:
    pc.stop("etcd", kill=True)
    try:
        pc.stop("kube-apiserver", kill=True)  # SIGTERM would wait for etcd to drain its requests
        res = pc.cli("start", "kube-apiserver", check=False)
        assert res.returncode == 1
        assert "needs etcd" in res.stderr and "e2e/cluster start etcd" in res.stderr, res.stderr
    finally:
        pc.start("etcd")
        pc.start("kube-apiserver")
    wait_for(lambda: readyz(pc), timeout=60, message="the apiserver ready after etcd and it started")


def test_up_starts_stopped_components_in_place(pc: PrivateCluster) -> None:
    apiserver = pc.pid("kube-apiserver")
    pc.stop("kube-scheduler")
    pc.stop("prometheus")
    res = pc.cli("up")
    assert "cleaning up" not in res.stderr, res.stderr  # not rebuilt: the running parts stay
    assert "starting what `e2e/cluster stop` stopped: kube-scheduler, prometheus" in res.stderr, res.stderr
    st = pc.fresh_state()
    assert st["pids"]["kube-apiserver"] == apiserver and not st.get("stopped")
    assert procs.alive(st["pids"]["kube-scheduler"]) and procs.alive(st["pids"]["prometheus"])


def test_restart_prometheus_same_url(pc: PrivateCluster) -> None:
    url = pc.prometheus_url
    old = pc.pid("prometheus")
    pc.restart("prometheus")
    assert pc.fresh_state()["prometheus_url"] == url and pc.pid("prometheus") != old

    def answers() -> bool:
        with urllib.request.urlopen(f"{url}/api/v1/query?query=up", timeout=2) as resp:
            return bool(json.load(resp)["status"] == "success")

    wait_for(answers, timeout=30, message="the restarted Prometheus answering queries on its old URL")


def test_verbs_without_a_cluster_fail_with_the_reason(pc: PrivateCluster) -> None:
    other = PrivateCluster(state={**pc.state, "state_dir": str(pc.state_dir) + "-absent"})
    res = other.cli("restart", "etcd", check=False)
    assert res.returncode == 1 and "run `e2e/cluster up` first" in res.stderr, res.stderr
