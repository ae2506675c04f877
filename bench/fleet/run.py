"""Reconcile at fleet scale on a real local control plane: throughput, latency, API calls, memory.

Starts its own cluster (MODELFLEET_BENCH_CLUSTER_DIR, default ~/.cache/modelfleet/bench-cluster) with
--nodes KWOK GPU nodes (8 GPUs each) and --foreign-pods unrelated pods in other namespaces (bound to
the fake nodes, run by kwok), then the real operator, creates --count LLMDeployments (1 replica x
1 GPU) at once and prints:
- seconds from the first create until all are Ready, and per-object create->Ready p50/p95/max;
- the operator's API requests by verb during the rollout and during an idle minute after it, writes
  in that minute (should be 0) and reads per second (Lease renewals of leader election are counted
  apart: they are the one thing a healthy idle leader must keep doing);
- 409 conflicts retried on a fresh body; the operator's RSS (peak and settled).
Numbers, not assertions. `python -m bench.fleet --nodes 1000 --count 500 --foreign-pods 10000 -o json`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.fleet import build, phases
from prometheus_client.parser import text_string_to_metric_families

ROOT = build.ROOT
from helpers import wait_for  # noqa: E402  (e2e/ is on sys.path via build)
from operator_fixture import CRD_FILE, OperatorProcess, start_operator  # noqa: E402

STATE = Path(os.environ.get("MODELFLEET_BENCH_CLUSTER_DIR", Path.home() / ".cache/modelfleet/bench-cluster"))
RESYNC = 30  # two no-op resync rounds fall into the idle minute
NAMESPACE = "fleet"
CLUSTER_NODES = 4  # made by `e2e/cluster up`; the rest in bulk by build.create_nodes
# The foreign pods stand for a busy shared cluster whose pods already run: the rollout is timed only once
# kwok has run them all (else the model pods queue behind them in kwok, and the figure measures kwok).
# This long at most (--foreign-wait); past it the bench goes on and says how many were still pending.
FOREIGN_WAIT = 1200
WRITE_VERBS = ("apply", "patch", "create", "update", "delete")
READ_VERBS = ("get", "list", "watch")


def sh(*args: str, env: dict[str, str], stdin: str | None = None) -> str:
    res = subprocess.run(args, input=stdin, capture_output=True, text=True, env=env, check=False)
    if res.returncode:
        raise SystemExit(f"{' '.join(args[:3])}… failed:\n{res.stderr[-2000:]}")
    return res.stdout


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """The operator's peak resident memory, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.peak = max(self.peak, rss_mib(self.pid))
            except OSError:
                return

    def stop(self) -> float:
        self._stop.set()
        return self.peak


def requests(op: OperatorProcess) -> dict[tuple[str, str], float]:
    """The operator's API requests so far, by (verb, resource)."""
    with urllib.request.urlopen(op.metrics_url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "modelfleet_kube_requests_total":
                out[(s.labels["verb"], s.labels["resource"])] = s.value
    return out


def call_seconds(op: OperatorProcess) -> tuple[float, float]:
    """(seconds summed over, number of) the operator's API calls so far."""
    return (op.metric("modelfleet_kube_request_duration_seconds_sum"),
            op.metric("modelfleet_kube_request_duration_seconds_count"))


def delta(after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


def by_verb(counts: dict[tuple[str, str], float], lease: bool = False) -> dict[str, int]:
    """Requests by verb, without (or, with lease=True, only) the leader-election Lease."""
    out: dict[str, int] = {}
    for (verb, resource), n in counts.items():
        if (resource == "Lease") == lease:
            out[verb] = out.get(verb, 0) + int(n)
    return dict(sorted(out.items()))


class ReadyWatch(threading.Thread):
    """Records when each LLMDeployment first reports phase Ready (a watch: no polling load)."""

    def __init__(self, api: Any, started: float) -> None:
        super().__init__(daemon=True)
        self.api, self.started, self.error = api, started, ""
        self.ready_at: dict[str, float] = {}

    def run(self) -> None:
        from kubernetes import client, watch

        custom = client.CustomObjectsApi(self.api)
        try:
            while True:
                for event in watch.Watch().stream(custom.list_namespaced_custom_object, "modelfleet.io", "v1alpha1",
                                                  NAMESPACE, "llmdeployments", timeout_seconds=300):
                    obj = event["object"]
                    if (obj.get("status") or {}).get("phase") == "Ready":
                        self.ready_at.setdefault(obj["metadata"]["name"], time.monotonic() - self.started)
        except Exception as exc:  # reported, the main thread times out
            self.error = repr(exc)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def measure(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Everything after the cluster is up: nodes, foreign pods, operator, rollout, idle minute."""
    api = build.api_client(env["KUBECONFIG"])
    build.create_nodes(api, CLUSTER_NODES, args.nodes)
    wait_for(lambda: build.ready_nodes(api) >= args.nodes, timeout=300, interval=2, message=f"{args.nodes} nodes Ready")
    foreign_pending = 0
    if args.foreign_pods:
        build.create_foreign_pods(api, args.foreign_pods, args.nodes)
        try:
            wait_for(lambda: build.foreign_not_running(api) == 0, timeout=args.foreign_wait, interval=5,
                     message="kwok runs every foreign pod")
        except AssertionError:  # they exist all the same (what the operator must not receive); say so
            foreign_pending = build.foreign_not_running(api)
            print(f"  kwok has not run every foreign pod within {args.foreign_wait} s ({foreign_pending}+ pending); "
                  "going on (kwok goes on starting them during the rollout)", file=sys.stderr)
    op = start_operator(env["KUBECONFIG"], STATE / "logs" / "operator-bench.log", resync_seconds=str(RESYNC),
                        metrics_mode="off", log_level="warning")
    sampler = RssSampler(op.proc.pid)
    sampler.start()
    try:
        rss_start = rss_mib(op.proc.pid)
        before, calls_before = requests(op), call_seconds(op)
        started = time.monotonic()
        watcher = ReadyWatch(api, started)
        watcher.start()
        applied = build.create_llms(api, args.count, NAMESPACE)
        try:
            wait_for(lambda: len(watcher.ready_at) >= args.count, timeout=args.ready_timeout, interval=0.5,
                     message=f"{args.count} Ready (watch error: {watcher.error or 'none'})")
        except AssertionError:  # the figures so far are still worth printing: say what did not finish
            print(f"only {len(watcher.ready_at)}/{args.count} Ready after {args.ready_timeout} s; operator log:\n"
                  f"{op.log_tail(20)}", file=sys.stderr)
            lat = list(watcher.ready_at.values()) or [float("nan")]
            return {
                "nodes": args.nodes, "count": args.count, "foreign_pods": args.foreign_pods,
                "foreign_pods_pending_at_start": foreign_pending,
                "ready_count": len(watcher.ready_at), "ready_seconds": None,
                "ready_p50_seconds": round(statistics.median(lat), 1), "ready_p95_seconds": None,
                "rollout_requests_by_verb": by_verb(delta(requests(op), before)),
                "idle_writes": None, "idle_reads_per_second": None,
                "conflicts": int(op.metric("modelfleet_reconcile_conflicts_total")),
                "reconcile_errors": int(op.metric("modelfleet_reconciles_total", outcome="error")),
                "watch_unlabelled_objects": int(op.metric("modelfleet_watch_unlabelled_objects_total")),
                "rss_mib_start": round(rss_start, 1), "rss_mib_peak": round(sampler.stop(), 1),
                "rss_mib_settled": None, "load_average": [round(x, 2) for x in os.getloadavg()],
            }
        total = time.monotonic() - started
        rollout = delta(requests(op), before)
        calls = [a - b for a, b in zip(call_seconds(op), calls_before, strict=True)]
        stages = phases.summary(phases.stage_times(api, NAMESPACE))
        # Settle (the rollout's last status writes, one resync round), then an idle minute.
        start_rounds = op.metric("modelfleet_resync_rounds_total")
        wait_for(lambda: op.metric("modelfleet_resync_rounds_total") >= start_rounds + 1, timeout=RESYNC * 4,
                 interval=1, message="a resync round")
        idle_before, idle_start, noop_before = requests(op), time.monotonic(), op.metric(
            "modelfleet_reconciles_total", outcome="unchanged")
        wait_for(lambda: time.monotonic() - idle_start >= args.idle_seconds, timeout=args.idle_seconds + 5,
                 interval=1, message="the idle minute")
        idle_span = time.monotonic() - idle_start
        idle = delta(requests(op), idle_before)
        floor = build.create_services(api, args.count, "service-floor")
        lat = list(watcher.ready_at.values())
        idle_ops, idle_lease = by_verb(idle), by_verb(idle, lease=True)
        return {
            "nodes": args.nodes,
            "count": args.count,
            "foreign_pods": args.foreign_pods,
            "foreign_pods_pending_at_start": foreign_pending,  # at most one page (500) is counted
            "foreign_wait_seconds": args.foreign_wait,
            "create_seconds": round(applied, 1),
            "ready_seconds": round(total, 1),
            "ready_p50_seconds": round(statistics.median(lat), 1),
            "ready_p95_seconds": round(pct(lat, 0.95), 1),
            "ready_max_seconds": round(max(lat), 1),
            "phases": stages,
            # The settled cluster creating as many bare Services without the operator: a lower bound for
            # ready_seconds on this cluster (Ready waits for the Service; cluster IPs are allocated serially).
            "service_floor_seconds": round(floor, 1),
            "rollout_requests_by_verb": by_verb(rollout),
            # How long the API server took to answer the operator: the rollout's pace when it is the bottleneck.
            "rollout_api_call_seconds_mean": round(calls[0] / calls[1], 3) if calls[1] else None,
            "rollout_requests_per_object": round(sum(by_verb(rollout).values()) / args.count, 2),
            "idle_seconds": round(idle_span, 1),
            "idle_requests_by_verb": idle_ops,
            "idle_writes": sum(idle_ops.get(v, 0) for v in WRITE_VERBS),
            "idle_writes_by_resource": {f"{verb} {res}": int(n) for (verb, res), n in sorted(idle.items())
                                        if verb in WRITE_VERBS and res != "Lease"},
            "idle_reads_per_second": round(sum(idle_ops.get(v, 0) for v in READ_VERBS) / idle_span, 3),
            "idle_noop_reconciles": int(op.metric("modelfleet_reconciles_total", outcome="unchanged") - noop_before),
            "idle_lease_requests_by_verb": idle_lease,
            "conflicts": int(op.metric("modelfleet_reconcile_conflicts_total")),
            "reconcile_errors": int(op.metric("modelfleet_reconciles_total", outcome="error")),
            "reconciles": int(op.metric("modelfleet_reconciles_total")),
            # Summed over every waiting call (they wait side by side): how much the QPS/burst bucket held back.
            "rate_limit_wait_seconds": round(op.metric("modelfleet_kube_throttled_seconds_total"), 1),
            "watch_objects_received": {k: int(op.metric("modelfleet_watch_objects_received_total", kind=k))
                                       for k in ("deployment", "service", "pod")},
            "watch_unlabelled_objects": int(op.metric("modelfleet_watch_unlabelled_objects_total")),
            "rss_mib_start": round(rss_start, 1),
            "rss_mib_peak": round(sampler.stop(), 1),
            "rss_mib_settled": round(rss_mib(op.proc.pid), 1),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        sampler.stop()
        op.proc.terminate()
        try:
            op.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("the operator did not stop within 30 s of SIGTERM; killed", file=sys.stderr)
            op.proc.kill()


def text(r: dict[str, Any]) -> str:
    """The figures for a person."""
    return "\n".join([
        f"fleet benchmark: {r['count']} LLMDeployments x 1 replica x 1 GPU, {r['nodes']} KWOK nodes, "
        f"{r['foreign_pods']} foreign pods; load average {r['load_average']}",
        f"  creating all objects                 {r['create_seconds']:8.1f} s",
        f"  all Ready after the first create     {r['ready_seconds']:8.1f} s",
        f"  create->Ready p50 / p95 / max        {r['ready_p50_seconds']} / {r['ready_p95_seconds']} / "
        f"{r['ready_max_seconds']} s",
        "  stages, s after the first create     " + ", ".join(
            f"{k} {v['median']}/{v['max']}" for k, v in r["phases"].items()) + " (median/max)",
        f"  {r['count']} bare Services, no operator   {r['service_floor_seconds']:8.1f} s (the cluster's floor)",
        f"  API requests during rollout          {r['rollout_requests_by_verb']}  "
        f"({r['rollout_requests_per_object']} per object, {r['rollout_api_call_seconds_mean']} s each on average)",
        f"  idle {r['idle_seconds']:.0f} s: requests                {r['idle_requests_by_verb']}  "
        f"(writes {r['idle_writes']}, reads {r['idle_reads_per_second']}/s, "
        f"{r['idle_noop_reconciles']} no-op reconciles; Lease {r['idle_lease_requests_by_verb']})",
        f"  409 conflicts retried                {r['conflicts']:8d}   reconcile errors {r['reconcile_errors']}",
        f"  objects received by child watches    {r['watch_objects_received']} "
        f"(unlabelled: {r['watch_unlabelled_objects']})",
        f"  operator RSS start / peak / settled  {r['rss_mib_start']} / {r['rss_mib_peak']} / "
        f"{r['rss_mib_settled']} MiB",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fleet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=200, help="LLMDeployments to create (default 200)")
    parser.add_argument("--nodes", type=int, default=0,
                        help="KWOK GPU nodes, 8 GPUs each (default: enough for --count, at least 4)")
    parser.add_argument("--foreign-pods", type=int, default=0,
                        help="unrelated pods (no modelfleet label) in 10 other namespaces (default 0)")
    parser.add_argument("--foreign-wait", type=int, default=FOREIGN_WAIT,
                        help=f"seconds to wait for kwok to run the foreign pods before the first apply (default "
                             f"{FOREIGN_WAIT}); model pods queue behind the ones still waiting")
    parser.add_argument("--idle-seconds", type=int, default=60, help="length of the idle window (default 60)")
    parser.add_argument("--ready-timeout", type=int, default=600,
                        help="seconds to wait for all Ready before printing partial figures (default 600)")
    parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="text (default) or json")
    parser.add_argument("--keep", action="store_true", help="leave the bench cluster running")
    args = parser.parse_args(argv)
    if args.count < 1 or args.nodes < 0 or args.foreign_pods < 0:
        parser.error("--count must be >= 1; --nodes and --foreign-pods >= 0")
    args.nodes = max(args.nodes or (args.count + 7) // 8 + 1, CLUSTER_NODES)
    if args.nodes * 8 < args.count:
        parser.error(f"--nodes {args.nodes} x 8 GPUs cannot hold --count {args.count} one-GPU replicas")
    env = dict(os.environ, MODELFLEET_CLUSTER_DIR=str(STATE))
    print(f"starting a bench cluster in {STATE} …", file=sys.stderr)
    out = sh(str(ROOT / "e2e/cluster"), "up", "--nodes", str(CLUSTER_NODES), env=env)
    env["KUBECONFIG"] = out.strip().splitlines()[-1].split("=", 1)[1]
    kubectl = json.loads((STATE / "state.json").read_text())["tools"]["kubectl"]
    sh(kubectl, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE), env=env)
    sh(kubectl, "wait", "--for=condition=Established", "crd/llmdeployments.modelfleet.io", env=env)
    sh(kubectl, "create", "namespace", NAMESPACE, env=env)
    try:
        result = measure(args, env)
    finally:
        if not args.keep:
            sh(str(ROOT / "e2e/cluster"), "down", env=env)
    print(json.dumps(result, indent=2) if args.output == "json" or result["ready_seconds"] is None else text(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
