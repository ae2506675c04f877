"""How fast the operator repairs hand edits and hands over leadership, on the local cluster.

Prints, per owned field of the child Deployment (image, env, replicas, label, args, resources) and for
the Service selector, the seconds from a hand edit (that keeps the config-hash annotation) until the
operator has restored it; then the leader failover gap: two operators on one Lease, the leader
SIGKILLed, seconds until the standby holds the Lease and until it has reverted an edit made right after
the kill. Numbers, not assertions.

    MODELFLEET_CLUSTER_DIR=/tmp/mf-x e2e/cluster up
    MODELFLEET_CLUSTER_DIR=/tmp/mf-x python -m bench.operator_faults [--resync 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "e2e"))

from helpers import wait_for  # noqa: E402
from operator_fixture import CRD_FILE, OperatorProcess, start_operator  # noqa: E402
from test_operator import manifest  # noqa: E402

CACHE = Path(os.environ.get("MODELFLEET_CACHE", Path.home() / ".cache/modelfleet"))
CLUSTER = Path(os.environ.get("MODELFLEET_CLUSTER_DIR", CACHE / "cluster"))
KUBECONFIG = str(CLUSTER / "kubeconfig")
KUBECTL = str(next(CACHE.glob("bin/k8s-*/kubectl"), "kubectl"))


def k(*args: str, stdin: str | None = None, check: bool = True) -> str:
    res = subprocess.run([KUBECTL, "--kubeconfig", KUBECONFIG, *args], input=stdin, capture_output=True, text=True)
    if check and res.returncode:
        raise SystemExit(f"kubectl {' '.join(args[:3])}… failed: {res.stderr[-1000:]}")
    return res.stdout


def kj(*args: str) -> Any:
    return json.loads(k(*args, "-o", "json"))


def timed(edit: list[str], restored: Callable[[], bool], timeout: float) -> float:
    """Seconds from running `kubectl *edit` until `restored()` holds."""
    k(*edit)
    start = time.monotonic()
    wait_for(restored, timeout=timeout, interval=0.1, message=f"the operator to undo `kubectl {' '.join(edit)}`")
    return time.monotonic() - start


def fresh_namespace(name: str) -> str:
    k("delete", "namespace", name, "--ignore-not-found", "--wait=true")
    k("create", "namespace", name)
    return name


def ready(ns: str, name: str) -> bool:
    conds = (kj("get", "llm", name, "-n", ns).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def container(ns: str, name: str) -> dict[str, Any]:
    dep: dict[str, Any] = kj("get", "deployment", name, "-n", ns)["spec"]["template"]["spec"]["containers"][0]
    return dep


def drift(resync: int, rounds: int, logs: Path) -> None:
    ns = fresh_namespace("bench-drift")
    op = start_operator(KUBECONFIG, logs / "drift.log", namespaces=ns, metrics_mode="off",
                        resync_seconds=str(resync), lease_name="bench-drift")
    try:
        k("apply", "-n", ns, "-f", "-", stdin=manifest("dr", replicas=1))
        wait_for(lambda: ready(ns, "dr"), timeout=120, message="dr Ready")
        image = container(ns, "dr")["image"]
        # The Service first, while nothing else happens: it has no watch, so only the resync repairs it.
        # The edits are spread over the resync period (a bench, not a test: the pause samples phases).
        selector = kj("get", "service", "dr", "-n", ns)["spec"]["selector"]
        took = []
        for i in range(rounds):
            time.sleep(resync * (i + 1) / (rounds + 1))
            took.append(timed(["patch", "service", "dr", "-n", ns, "--type=merge", "-p",
                               '{"spec":{"selector":{"app":"hand-edited"}}}'],
                              lambda: kj("get", "service", "dr", "-n", ns)["spec"]["selector"] == selector,
                              resync * 3 + 30))
        service_line = (f"  Service    selector   median {statistics.median(took):5.1f}  max {max(took):5.1f}"
                        "  (no Service watch: the next resync)")
        gpu = "nvidia.com~1gpu"  # JSON-pointer escape of the "/" in the resource name
        res_patch = json.dumps([
            {"op": "replace", "path": f"/spec/template/spec/containers/0/resources/{part}/{gpu}", "value": "3"}
            for part in ("limits", "requests")])
        edits: dict[str, tuple[list[str], Callable[[], bool]]] = {
            "image": (["set", "image", "deployment/dr", "-n", ns, "vllm=example.com/hand-edited:1"],
                      lambda: container(ns, "dr")["image"] == image),
            "env": (["set", "env", "deployment/dr", "-n", ns, "-c", "vllm", "HF_HOME=/hand-edited"],
                    lambda: {e["name"]: e.get("value") for e in container(ns, "dr")["env"]}["HF_HOME"]
                    != "/hand-edited"),
            "replicas": (["scale", "deployment/dr", "-n", ns, "--replicas=3"],
                         lambda: kj("get", "deployment", "dr", "-n", ns)["spec"]["replicas"] == 1),
            "label": (["label", "deployment/dr", "-n", ns, "modelfleet.io/deployment=other", "--overwrite"],
                      lambda: kj("get", "deployment", "dr", "-n", ns)["metadata"]["labels"]
                      ["modelfleet.io/deployment"] == "dr"),
            "args": (["patch", "deployment/dr", "-n", ns, "--type=json", "-p",
                      '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--hand-edited"}]'],
                     lambda: "--hand-edited" not in container(ns, "dr")["args"]),
            "resources": (["patch", "deployment/dr", "-n", ns, "--type=json", "-p", res_patch],
                          lambda: container(ns, "dr")["resources"]["limits"]["nvidia.com/gpu"] == "1"),
        }
        print(f"drift reversion, resync every {resync} s (seconds from the edit to the restored field):")
        for field, (edit, restored) in edits.items():
            took = [timed(edit, restored, resync * 3 + 30) for _ in range(rounds)]
            print(f"  Deployment {field:10s} median {statistics.median(took):5.1f}  max {max(took):5.1f}")
        print(service_line)
    finally:
        stop(op)
        k("delete", "namespace", ns, "--wait=false")


def holder(ns: str, lease: str) -> str:
    return str(kj("get", "lease", lease, "-n", ns)["spec"].get("holderIdentity") or "")


def logged_at(op: OperatorProcess, text: str, after: float) -> float | None:
    """Wall-clock time of the first line of `op`'s log containing `text` logged after `after`, if any."""
    for line in op.log.read_text(errors="replace").splitlines():
        if text in line:
            try:
                stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
            if stamp >= after:
                return stamp
    return None


def kill_leader(ns: str, lease: str, ops: list[OperatorProcess]) -> tuple[OperatorProcess, float, float]:
    """SIGKILL the leader and edit the Deployment at once. Seconds from the kill until the new leader logged
    that it leads, and until it logged re-applying the edited Deployment (from the operators' own logs, so
    kubectl's latency is not counted)."""
    leader_id = wait_for(lambda: holder(ns, lease), timeout=60, message="a leader")
    (leader,) = [o for o in ops if o.proc.poll() is None and leader_id.endswith(f"-{o.proc.pid}")]
    standby = [o for o in ops if o is not leader]
    leader.proc.send_signal(signal.SIGKILL)
    killed = time.time()
    k("set", "image", "deployment/fo", "-n", ns, "vllm=example.com/hand-edited:1")
    led = wait_for(lambda: min((t for o in standby if (t := logged_at(o, "leads (Lease", killed))), default=None),
                   timeout=60, interval=0.2, message="a standby to lead")
    acted = wait_for(lambda: min((t for o in standby if (t := logged_at(o, "Deployment " + ns + "/fo differs",
                                                                          killed))), default=None),
                     timeout=60, interval=0.2, message="the new leader to undo the edit")
    return leader, led - killed, acted - killed


def failover(rounds: int, logs: Path) -> None:
    ns = fresh_namespace("bench-failover")
    lease = "bench-failover"
    k("apply", "-n", ns, "-f", "-", stdin=manifest("fo", replicas=1))

    def operator(i: int) -> OperatorProcess:
        return start_operator(KUBECONFIG, logs / f"failover-{i}.log", namespaces=ns, metrics_mode="off",
                              resync_seconds="60", lease_name=lease, lease_namespace=ns)

    ops = [operator(0), operator(1)]
    leases: list[float] = []
    actions: list[float] = []
    try:
        wait_for(lambda: ready(ns, "fo"), timeout=120, message="fo Ready")
        for i in range(rounds):
            leader, took_lease, took_action = kill_leader(ns, lease, ops)
            leases.append(took_lease)
            actions.append(took_action)
            print(f"  SIGKILL {i + 1}: Lease taken {took_lease:4.1f} s, first action {took_action:4.1f} s after")
            ops = [o for o in ops if o is not leader] + [operator(i + 2)]
        print(f"leader failover over {rounds} SIGKILLs: Lease taken median {statistics.median(leases):.1f} s, "
              f"max {max(leases):.1f} s; first action median {statistics.median(actions):.1f} s, "
              f"max {max(actions):.1f} s")
    finally:
        for op in ops:
            stop(op)
        k("delete", "namespace", ns, "--wait=false")


def stop(op: OperatorProcess) -> None:
    if op.proc.poll() is None:
        op.proc.terminate()
        try:
            op.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            op.proc.kill()


def main(argv: list[str] | None = None) -> int:
    """Run both measurements against the running local cluster."""
    parser = argparse.ArgumentParser(prog="python -m bench.operator_faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resync", type=int, default=60, help="operator resync interval in seconds (default 60)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions per measurement (default 3)")
    args = parser.parse_args(argv)
    if not Path(KUBECONFIG).exists():
        print(f"no cluster at {CLUSTER}: start one with `e2e/cluster up`", file=sys.stderr)
        return 2
    k("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    logs = CLUSTER / "logs" / "bench-operator-faults"
    drift(args.resync, args.rounds, logs)
    failover(args.rounds, logs)
    return 0
