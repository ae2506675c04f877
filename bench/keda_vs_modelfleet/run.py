"""Closed loop, side by side: modelfleet's autoscaler and real KEDA on the same load, simulator fleet.

Two LLMDeployments in one namespace on the local cluster, each with its own vllmsim fleet (one
simulator per Running pod, scraped by the cluster's Prometheus) and its own copy of the same load
(closed-loop clients, the same phases at the same moments):

- `mf`: modelfleet's queue-depth autoscaler, its defaults (targetQueueDepth 4, scale-down window 300 s,
  15 s cycle);
- `kd`: `autoscaling.enabled: false` and a KEDA ScaledObject as the vLLM production stack documents it
  (docs/source/use_cases/autoscaling-keda.rst: Prometheus trigger on `vllm:num_requests_waiting`,
  `threshold: '5'`, pollingInterval 15, cooldownPeriod 360; here summed over the deployment's pods) and
  the HPA's default behaviour (scale-down window 300 s, 15 s sync).

Both get maxReplicas 4. It prints, from Prometheus, p95 and mean queue wait
(`vllm:request_queue_time_seconds`), requests served, replica-seconds (scraped simulators, 1 s
resolution) and the peak; then every replica change of both, KEDA's HPA events, and the check of the
autoscaler simulation's KEDA model (operator/modelfleet/autoscaler/simulate/baselines.py) against
every decision the real HPA made: the model is fed what the HPA saw (its status: the metric and the
current replicas at each sync) and must name the same desired replicas.

    python -m bench.keda_vs_modelfleet [--quick] [--keep]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "e2e"))
os.environ.setdefault("MODELFLEET_CLUSTER_DIR", str(Path.home() / ".cache/modelfleet/bench-keda-cluster"))

import yaml  # noqa: E402

from autoscale_harness import Load, SimFleet, prom_query, selector  # noqa: E402
from helpers import Cluster, wait_for  # noqa: E402
from keda_harness import HpaWatch, ReplicaRecorder, ensure_keda, hpa_events, hpa_name, scaled_object  # noqa: E402
from operator_fixture import CRD_FILE, start_operator  # noqa: E402
from test_operator import manifest  # noqa: E402

SEQS, TPS = 2, 10.0  # a simulator: 2 slots, 10 tokens/s; a request (10 tokens) holds a slot 1 s
KEDA_THRESHOLD = 5  # vLLM production stack's documented threshold for vllm:num_requests_waiting
MAX = 4
# (seconds, closed-loop clients): a quiet start, a burst, a shoulder, then nothing (the tail shows
# the scale-down window).
PHASES = [(60, 3), (120, 16), (90, 7)]
QUICK_PHASES = [(20, 3), (60, 16), (40, 7)]


def model_check(samples: list[tuple[float, float | None, int, int]], threshold: float, min_r: int,
                max_r: int, sync: float = 15.0) -> tuple[int, int, list[str]]:
    """Feed the simulator's KEDA model each HPA status the real HPA reported; (agree, total, rows).

    The HPA writes its status at every sync, but only changes are visible: between two recorded
    statuses the same one is repeated every `sync` seconds (what the HPA's scale-down window saw).
    """
    from modelfleet.autoscaler.simulate.baselines import HpaBehavior, external_average_replicas

    feed: list[tuple[float, float, int, int | None]] = []
    usable = [(t, a, c, d) for t, a, c, d in samples if a is not None and c > 0]
    for i, (t, avg, current, desired) in enumerate(usable):
        feed.append((t, avg, current, desired))
        nxt = usable[i + 1][0] if i + 1 < len(usable) else t
        k = 1
        while t + k * sync < nxt - 1.0:
            feed.append((t + k * sync, avg, current, None))  # an unchanged sync: nothing to compare
            k += 1
    behavior = HpaBehavior(min_r, max_r)
    agree, rows = 0, []
    for t, avg, current, desired in feed:
        # AverageValue: the HPA reports the query's total over the current replicas, as a milli-quantity
        # rounded up; the total of vllm:num_requests_waiting is a count, so round it back.
        total = float(round(avg * current))
        model = behavior.apply(external_average_replicas(total, current, threshold), current, t)
        if desired is None:
            continue
        agree += model == desired
        rows.append(f"  +{t:6.1f}s metric avg {avg:6.3f} x {current} = total {total:4.0f}: HPA desired {desired}, "
                    f"model {model}{'' if model == desired else '   <-- differs'}")
    return agree, len(rows), rows


def prom_figures(url: str, ns: str, name: str, seconds: int) -> dict[str, float | None]:
    """Queue wait, requests and replica-seconds of one deployment over the last `seconds`."""
    sel = selector(ns, name)
    w = f"{seconds}s"

    def one(q: str) -> float | None:
        res = prom_query(url, q, timeout=20)
        return float(res[0]["value"][1]) if res else None

    return {
        "p95_queue_s": one(f"histogram_quantile(0.95, sum by (le) "
                           f"(increase(vllm:request_queue_time_seconds_bucket{sel}[{w}])))"),
        "mean_queue_s": one(f"sum(increase(vllm:request_queue_time_seconds_sum{sel}[{w}])) / "
                            f"sum(increase(vllm:request_queue_time_seconds_count{sel}[{w}]))"),
        "requests": one(f"sum(increase(vllm:request_queue_time_seconds_count{sel}[{w}]))"),
        "replica_seconds": one(f"sum_over_time(count(vllm:num_requests_waiting{sel})[{w}:1s])"),
        "peak_replicas": one(f"max_over_time(count(vllm:num_requests_waiting{sel})[{w}:1s])"),
    }


def apply(cluster: Cluster, ns: str, obj: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump(obj))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.keda_vs_modelfleet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="shorter phases and 60 s scale-down windows for both (not their usual setting)")
    parser.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    args = parser.parse_args(argv)
    phases = QUICK_PHASES if args.quick else PHASES
    window = 60 if args.quick else 300

    t0 = time.monotonic()
    print(f"cluster {os.environ['MODELFLEET_CLUSTER_DIR']}: starting (Prometheus + KEDA) …", file=sys.stderr)
    cluster = Cluster(state=ensure_keda())
    os.environ["KUBECONFIG"] = cluster.kubeconfig
    prom = str(cluster.prometheus_url)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    cluster.kubectl("wait", "--for=condition=Established", "crd/llmdeployments.modelfleet.io", "--timeout=60s")
    ns = f"bench-keda-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", ns)
    op = start_operator(cluster.kubeconfig, cluster.state_dir / "logs" / "operator-bench-keda.log",
                        namespaces="bench-*", prometheus_url=prom, log_level="info")
    engine = {"maxModelLen": 8192, "maxNumSeqs": SEQS}
    mf_auto: dict[str, Any] = {"enabled": True, "minReplicas": 1, "maxReplicas": MAX}
    if args.quick:
        mf_auto["scaleDownStabilizationSeconds"] = window
    apply(cluster, ns, yaml.safe_load(manifest("mf", engine=engine, autoscaling=mf_auto)))
    apply(cluster, ns, yaml.safe_load(manifest("kd", replicas=1, engine=engine, autoscaling={"enabled": False})))
    so = scaled_object("kd", ns, prom, threshold=KEDA_THRESHOLD, min_replicas=1, max_replicas=MAX,
                       scale_down_window=window if args.quick else None, polling_interval=15)
    so["spec"]["cooldownPeriod"] = 360
    try:
        with ExitStack() as stack:
            fleets = {n: stack.enter_context(SimFleet(cluster, ns, n, max_num_seqs=SEQS, tokens_per_second=TPS))
                      for n in ("mf", "kd")}
            for f in fleets.values():
                f.wait_sims(1, timeout=90)
                f.wait_scraped(1)
            apply(cluster, ns, so)
            watch = HpaWatch(cluster, ns, hpa_name("kd")).start()
            recs = {n: stack.enter_context(ReplicaRecorder(cluster, ns, n, interval=0.5)) for n in fleets}
            wait_for(lambda: watch.samples and watch.samples[-1][1] is not None, timeout=60,
                     message="KEDA's HPA reading its metric")
            t_start = time.time()
            print(f"load: {phases} (seconds, clients) on each deployment", file=sys.stderr)
            ok = {n: 0 for n in fleets}
            failed = {n: 0 for n in fleets}
            marks = []
            for seconds, clients in phases:
                marks.append(f"+{time.monotonic() - recs['kd'].started:.0f}s {clients} clients")
                loads = {n: Load(f, clients=clients, seconds=seconds) for n, f in fleets.items()}
                for ld in loads.values():
                    ld.__enter__()
                for n, ld in loads.items():
                    ld.join(timeout=seconds + 90)
                    ok[n] += ld.ok
                    failed[n] += ld.failed
            t_load_end = time.time()
            marks.append(f"+{time.monotonic() - recs['kd'].started:.0f}s load off")
            print(f"load done; waiting up to {window + 90}s for both to scale back to 1", file=sys.stderr)
            try:
                wait_for(lambda: all(r.current("deployment") == 1 for r in recs.values()), timeout=window + 90,
                         interval=1, message="both back at 1 replica")
            except AssertionError as e:
                print(f"note: {e}", file=sys.stderr)
            t_end = time.time()
            watch.stop()
            # The window's last second must be in Prometheus: wait for a scrape after it.
            wait_for(lambda: all(float(r["value"][1]) > t_end for r in prom_query(
                prom, f"timestamp(count(vllm:num_requests_waiting{selector(ns, n)}))") for n in fleets),
                timeout=30, message="a scrape after the end of the window")
            span = int(t_end - t_start) + 1
            figures = {n: prom_figures(prom, ns, n, span) for n in fleets}
            events = hpa_events(cluster, ns, hpa_name("kd"))
            agree, total, rows = model_check(watch.samples, KEDA_THRESHOLD, 1, MAX)
    finally:
        op.proc.terminate()
        op.proc.wait(timeout=20)
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)

    print(f"\nside by side over {span} s ({t_load_end - t_start:.0f} s of load {phases}, then the tail); "
          f"vllmsim {SEQS} slots at {TPS:g} tokens/s, 10-token requests; maxReplicas {MAX}; "
          f"scale-down windows {window} s")
    print("| autoscaler | setting | p95 queue wait s | mean queue wait s | requests | replica-s | peak |")
    print("|---|---|---|---|---|---|---|")
    settings = {"mf": f"modelfleet targetQueueDepth 4 (default), window {window}s",
                "kd": f"KEDA {cluster.state['keda']['version']} sum(vllm:num_requests_waiting) threshold "
                      f"{KEDA_THRESHOLD}, HPA window {window}s"}
    for n, f in figures.items():
        def fmt(v: float | None, spec: str = ".2f") -> str:
            return "n/a" if v is None else format(v, spec)
        print(f"| {n} | {settings[n]} | {fmt(f['p95_queue_s'])} | {fmt(f['mean_queue_s'])} | "
              f"{fmt(f['requests'], '.0f')} | {fmt(f['replica_seconds'], '.0f')} | {fmt(f['peak_replicas'], '.0f')} |")
    print(f"client side: {ok} ok, {failed} failed (a request in flight on a removed pod fails)")
    print(f"load phases (recorder time): {', '.join(marks)}")
    for n, r in recs.items():
        print(f"\nreplica changes of {n} (t from the recorder start; llm = spec.replicas, deployment = child):\n"
              f"{r.table()}")
    print("\nKEDA's HPA events:")
    for e in events:
        print(f"  {e['first']} {e['reason']} x{e['count']}: {e['message']}")
    print(f"\nsimulator's KEDA model vs the real HPA: {agree}/{total} decisions agree")
    print("\n".join(rows))
    print(f"\nwhole run {time.monotonic() - t0:.0f} s", file=sys.stderr)
    if not args.keep:
        from localcluster import cluster as localcluster

        localcluster.down()
    return 0
