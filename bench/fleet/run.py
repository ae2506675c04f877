"""Reconcile at fleet scale on a real local control plane: throughput, latency, API calls, memory.

Starts its own cluster (separate state dir, many fake GPU nodes) and the real operator, applies N
LLMDeployments at once, and prints:
- time until all are Ready, and per-object apply->Ready latency (p50/p95/max);
- API requests per reconcile (from the operator's own /metrics), and writes during a quiet period
  of several resyncs (should be 0);
- the operator's resident memory.
Numbers, not assertions: `python -m bench.fleet [--count N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "e2e"))

from helpers import wait_for  # noqa: E402
from operator_fixture import CRD_FILE, start_operator  # noqa: E402

STATE = Path(os.environ.get("MODELFLEET_BENCH_CLUSTER_DIR", Path.home() / ".cache/modelfleet/bench-cluster"))
RESYNC = 10
NAMESPACE = "fleet"


def sh(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    res = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        raise SystemExit(f"{' '.join(args[:3])}… failed:\n{res.stderr[-2000:]}")
    return res.stdout


def manifests(count: int) -> str:
    docs = []
    for i in range(count):
        docs.append(
            {
                "apiVersion": "modelfleet.io/v1alpha1",
                "kind": "LLMDeployment",
                "metadata": {"name": f"m{i:04d}", "namespace": NAMESPACE},
                "spec": {
                    "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"},
                    "gpu": {"count": 1, "product": "NVIDIA-H100-80GB-HBM3"},
                    "engine": {"maxModelLen": 8192},
                    "replicas": 1,
                },
            }
        )
    return "\n---\n".join(json.dumps(d) for d in docs)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200, help="LLMDeployments to create (default 200)")
    parser.add_argument("--keep", action="store_true", help="leave the bench cluster running")
    args = parser.parse_args(argv)
    nodes = max(4, (args.count + 7) // 8 + 1)
    env = dict(os.environ, MODELFLEET_CLUSTER_DIR=str(STATE))
    print(f"starting a bench cluster with {nodes} fake nodes x 8 GPUs in {STATE} …", file=sys.stderr)
    kubeconfig = sh(str(ROOT / "e2e/cluster"), "up", "--nodes", str(nodes), env=env).strip().splitlines()[-1]
    env["KUBECONFIG"] = kubeconfig.split("=", 1)[1]
    state: dict[str, Any] = json.loads((STATE / "state.json").read_text())
    kubectl = state["tools"]["kubectl"]
    sh(kubectl, "apply", "--server-side", "-f", str(CRD_FILE), env=env)
    sh(kubectl, "wait", "--for=condition=Established", "crd/llmdeployments.modelfleet.io", env=env)
    sh(kubectl, "create", "namespace", NAMESPACE, env=env)

    op = start_operator(
        env["KUBECONFIG"],
        STATE / "logs" / "operator-bench.log",
        resync_seconds=str(RESYNC),
        metrics_mode="off",
        log_level="warning",
    )
    proc = op.proc
    try:
        rss_idle = rss_mib(proc.pid)
        started = time.monotonic()
        sh(kubectl, "apply", "--server-side", "-f", "-", env=env, stdin=manifests(args.count))
        applied = time.monotonic() - started
        ready_at: dict[str, float] = {}

        def all_ready() -> bool:
            out = json.loads(sh(kubectl, "get", "llm", "-n", NAMESPACE, "-o", "json", env=env))
            now = time.monotonic() - started
            for item in out["items"]:
                st = item.get("status") or {}
                if st.get("phase") == "Ready":
                    ready_at.setdefault(item["metadata"]["name"], now)
            return len(ready_at) == args.count

        wait_for(all_ready, timeout=max(120, args.count * 2), interval=0.5, message=f"{args.count} Ready")
        total = time.monotonic() - started
        reconciles = op.metric("modelfleet_reconciles_total")
        requests = op.metric("modelfleet_kube_requests_total")
        rss_busy = rss_mib(proc.pid)

        def rounds_later(n: int) -> None:
            start = op.metric("modelfleet_resync_rounds_total")
            wait_for(
                lambda: op.metric("modelfleet_resync_rounds_total") >= start + n,
                timeout=RESYNC * (n + 6),
                interval=1,
                message=f"{n} resync rounds",
            )

        rounds_later(1)  # the rollout's last status writes settle
        writes_before, quiet = op.kube_writes(), op.metric("modelfleet_reconciles_total", outcome="unchanged")
        rounds_later(2)
        quiet_reconciles = op.metric("modelfleet_reconciles_total", outcome="unchanged") - quiet
        quiet_writes = op.kube_writes() - writes_before
        lat = sorted(ready_at.values())
        print(f"\nfleet benchmark: {args.count} LLMDeployments x 1 replica x 1 GPU, {nodes} KWOK nodes, 2 cores")
        print(f"  kubectl apply of all objects            {applied:8.1f} s")
        print(f"  all Ready                               {total:8.1f} s  ({args.count / total:.1f} objects/s)")
        print(
            f"  apply->Ready p50 / p95 / max            {statistics.median(lat):6.1f} / "
            f"{lat[int(0.95 * (len(lat) - 1))]:.1f} / {lat[-1]:.1f} s"
        )
        print(
            f"  reconciles until all Ready              {reconciles:8.0f}  ({reconciles / args.count:.1f} per object)"
        )
        print(f"  API requests per reconcile              {requests / max(reconciles, 1):8.2f}")
        print(f"  writes during {quiet_reconciles:.0f} no-op resyncs      {quiet_writes:8.0f}")
        print(f"  409 conflicts retried on a fresh body   {op.metric('modelfleet_reconcile_conflicts_total'):8.0f}")
        print(f"  operator RSS idle / after rollout       {rss_idle:6.0f} / {rss_busy:.0f} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        if not args.keep:
            sh(str(ROOT / "e2e/cluster"), "down", env=env)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
