"""Autoscaler benchmark: ``python -m bench.autoscaler`` (from the repository root).

Runs the bursty and diurnal traces (traces.py) through the replica simulation (sim.py) twice:

* **modelfleet**: ``policy.decide`` with the LLMDeployment defaults (target queue depth 4 per
  ready replica, tolerance 0.1, scale-up at once by at most 4, scale-down after a 300 s window by
  1 per cycle, running load and starting pods taken into account), every 15 s;
* **KEDA/HPA baseline**: a Prometheus scaler on ``sum(vllm:num_requests_waiting)`` with an
  ``AverageValue`` target of 5, polled every 30 s; HPA algorithm
  ``desired = ceil(total / 5)`` with its 0.1 tolerance, the default scale-up policy
  (max(+100 %, +4 pods) per step) and a 300 s scale-down stabilization window.

Then prints the CPU time (``time.process_time``) of one ``run_cycle`` over 1,000 LLMDeployments.
The metrics source there is a stub that decodes and parses a synthetic Prometheus JSON answer
of 8,000 series (what the one batched query returns for 1,000 deployments of 3 pods); the
actuator is a no-op, so this is the operator's own CPU, not API-server latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.autoscaler import traces
from bench.autoscaler.sim import Autoscaler, Engine, Result, simulate
from prometheus_client import CollectorRegistry

from modelfleet.api import AutoscalingSpec
from modelfleet.autoscaler.loop import AutoscalerMetrics, Target, run_cycle
from modelfleet.autoscaler.metrics import DeploymentKey, Signals, parse_query_result
from modelfleet.autoscaler.policy import Observation, PolicyState, decide

ENGINE = Engine(max_num_seqs=16)


def modelfleet(spec: AutoscalingSpec, max_num_seqs: int) -> Autoscaler:
    """The policy under test, with its state carried between calls."""
    state = PolicyState()

    def step(obs: Observation, now: float) -> int:
        nonlocal state
        d = decide(spec, obs, state, now, max_num_seqs)
        state = d.state
        return d.desired_replicas

    return step


def keda_hpa(
    min_r: int, max_r: int, threshold: float = 5.0, window: float = 300.0, tolerance: float = 0.1
) -> Autoscaler:
    """KEDA Prometheus scaler (AverageValue on the total queue) driving the HPA algorithm."""
    recs: list[tuple[float, int]] = []

    def step(obs: Observation, now: float) -> int:
        current = obs.replicas
        total = obs.waiting or 0.0
        ratio = total / (threshold * current) if current else math.inf
        rec = current if current and abs(ratio - 1) <= tolerance else math.ceil(total / threshold)
        rec = max(min_r, min(max_r, rec))
        recs.append((now, rec))
        recs[:] = [(t, r) for t, r in recs if t > now - window]
        down = max(r for _, r in recs)  # HPA: highest recommendation of the window
        desired = rec if rec > current else down if down < current else current
        return min(desired, max(2 * current, current + 4), max_r)

    return step


def compare(name: str, rates: list[float], spec: AutoscalingSpec, seed: int) -> tuple[Result, Result]:
    """Run one trace under both autoscalers."""
    start = spec.min_replicas
    ours = simulate(rates, modelfleet(spec, ENGINE.max_num_seqs), engine=ENGINE, period=15, initial=start, seed=seed)
    base = simulate(
        rates, keda_hpa(spec.min_replicas, spec.max_replicas), engine=ENGINE, period=30, initial=start, seed=seed
    )
    return ours, base


def fmt_row(trace: str, who: str, r: Result) -> str:
    return (
        f"| {trace:8} | {who:16} | {r.p(0.95):10.1f} | {r.p(0.50):10.1f} | {r.replica_seconds / 3600:10.2f} "
        f"| {r.scale_events:6} | {r.max_replicas_seen:8} | {len(r.waits):8} |"
    )


class _StubSource:
    """Returns the parsed batched answer for N deployments; decoding + parsing is measured."""

    def __init__(self, n: int) -> None:
        result: list[dict[str, Any]] = []
        for i in range(n):
            lab = {"namespace": f"ns{i % 50}", "modelfleet_io_deployment": f"llm-{i}"}
            for sig, v in (("waiting", 12), ("running", 40), ("kv", 0.6), ("pods", 3), ("age", 4)):
                result.append({"metric": {**lab, "signal": sig}, "value": [1.7e9, str(v)]})
            for p in range(3):
                result.append(
                    {"metric": {**lab, "signal": "pod_running", "pod": f"llm-{i}-{p}"}, "value": [1.7e9, "13"]}
                )
        self.body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
        self.series = len(result)
        self.requests = 0

    def fetch(self, pod_urls: Mapping[DeploymentKey, Mapping[str, str]]) -> dict[DeploymentKey, Signals]:
        self.requests += 1
        return parse_query_result(json.loads(self.body)["data"]["result"])


class _NoopStore:
    def __init__(self) -> None:
        self.writes = 0

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        pass

    async def write_status(
        self,
        namespace: str,
        name: str,
        autoscaler: dict[str, Any],
        desired_replicas: int,
        conditions: list[dict[str, Any]],
    ) -> None:
        self.writes += 1

    async def event(self, namespace: str, name: str, type: str, reason: str, message: str) -> None:
        pass


def cycle_cpu(n: int = 1000) -> None:
    """CPU time of one run_cycle over n deployments (first cycle, then a steady one)."""
    spec = AutoscalingSpec(enabled=True, min_replicas=1, max_replicas=8, target_queue_depth=4)
    src, store = _StubSource(n), _NoopStore()
    metrics = AutoscalerMetrics(CollectorRegistry())
    targets = [Target(f"ns{i % 50}", f"llm-{i}", spec, 16, 3, 3) for i in range(n)]
    now = time.time()
    c0 = time.process_time()
    outs = asyncio.run(run_cycle(targets, src, store, now, metrics=metrics))
    c1 = time.process_time()
    first_writes, first_requests = store.writes, src.requests
    targets = [
        Target(t.namespace, t.name, spec, 16, 3, 3, autoscaler_status=o.autoscaler, conditions=o.conditions)
        for t, o in zip(targets, outs, strict=True)
    ]
    c2 = time.process_time()
    asyncio.run(run_cycle(targets, src, store, now + 15, metrics=metrics))
    c3 = time.process_time()
    print(
        f"\nOne autoscaler cycle over {n} LLMDeployments ({src.series} series in the one PromQL answer; "
        f"stub source, no-op actuator):"
    )
    print(f"  first cycle : {c1 - c0:.3f} s CPU, {first_writes} status writes, {first_requests} PromQL request(s)")
    print(
        f"  steady cycle: {c3 - c2:.3f} s CPU, {store.writes - first_writes} status writes, "
        f"{src.requests - first_requests} PromQL request(s)"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table and the per-cycle CPU time."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="4 h of the diurnal trace instead of 24 h")
    a = ap.parse_args(argv)
    spec = AutoscalingSpec(enabled=True, min_replicas=1, max_replicas=16)
    runs = {"bursty": traces.bursty(), "diurnal": traces.diurnal(seconds=4 * 3600 if a.quick else 86400)}
    t0 = time.monotonic()
    print(
        f"Engine: max_num_seqs={ENGINE.max_num_seqs}, prefill {ENGINE.prefill_tokens_per_s:g} tok/s, "
        f"decode {ENGINE.decode_tokens_per_s:g} tok/s/seq, prompt~{ENGINE.prompt_mean:g} / "
        f"output~{ENGINE.output_mean:g} tokens, cold start {ENGINE.cold_start[0]:g}-{ENGINE.cold_start[1]:g} s"
    )
    print("| trace    | autoscaler       | p95 wait s | p50 wait s | replica-h  | scales | max pods | requests |")
    print("|----------|------------------|------------|------------|------------|--------|----------|----------|")
    verdicts = []
    for name, rates in runs.items():
        ours, base = compare(name, rates, spec, a.seed)
        print(fmt_row(name, "modelfleet", ours))
        print(fmt_row(name, "KEDA/HPA 5/30s", base))
        saving = 1 - ours.replica_seconds / base.replica_seconds
        verdicts.append(
            f"{name}: p95 wait {ours.p(0.95):.1f} s vs {base.p(0.95):.1f} s, replica-seconds {saving:+.0%} saved"
        )
    print("\n" + "\n".join(verdicts))
    print(f"(simulation took {time.monotonic() - t0:.1f} s wall)")
    cycle_cpu()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
