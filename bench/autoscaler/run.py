"""Autoscaler benchmark: ``python -m bench.autoscaler`` (from the repository root).

Replays two traces through ``modelfleet autoscale simulate``'s simulator (the package
``modelfleet.autoscaler.simulate``) for the LLMDeployment in ``llama-8b-l4.yaml`` and prints the
whole cost/latency frontier: modelfleet's policy with the API defaults, the HPA and KEDA on
vLLM's queue metrics swept over their thresholds, a static fleet sized for the peak, and the
oracle floor, then the verdict at equal p95 TTFT.

* ``azure``: the shared real trace, ``../shared/traces/azure-llm-2023-conv.csv`` beside the
  repository (or ``$MODELFLEET_TRACES_DIR``). Azure LLM inference trace 2023 (conversation),
  Azure Public Dataset, from "Splitwise: Efficient generative LLM inference using phase
  splitting" (Patel et al., ISCA 2024); CC-BY 4.0.
* ``ramp``: a ramp with two flash crowds, generated from a seed (traces.py).

Then prints the CPU time (``time.process_time``) of one ``run_cycle`` over 1,000 LLMDeployments.
The metrics source there is a stub that decodes and parses a synthetic Prometheus JSON answer
of 8,000 series (what the one batched query returns for 1,000 deployments of 3 pods); the
actuator is a no-op, so this is the operator's own CPU, not API-server latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import yaml
from bench.autoscaler.traces import ramp_trace
from prometheus_client import CollectorRegistry

from modelfleet.api import AutoscalingSpec, LLMDeployment
from modelfleet.autoscaler.loop import AutoscalerMetrics, Target, run_cycle
from modelfleet.autoscaler.metrics import DeploymentKey, Signals, parse_query_result
from modelfleet.autoscaler.simulate.replica import ReplicaModel
from modelfleet.autoscaler.simulate.report import table, verdicts
from modelfleet.autoscaler.simulate.runs import CHOICES, compare_rows, stderr_progress
from modelfleet.autoscaler.simulate.trace import Request, read_trace

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SPEC = HERE / "llama-8b-l4.yaml"
AZURE = "azure-llm-2023-conv.csv"
ATTRIBUTION = ("Azure LLM inference trace 2023 (conversation), Azure Public Dataset; Patel et al., "
               "\"Splitwise\", ISCA 2024; CC-BY 4.0")


def shared_trace() -> Path | None:
    """The shared Azure trace: $MODELFLEET_TRACES_DIR, else shared/traces beside the clone (or its parent)."""
    dirs = [os.environ.get("MODELFLEET_TRACES_DIR", ""), str(REPO.parent / "shared" / "traces"),
            str(REPO.parents[1] / "shared" / "traces")]
    for d in dirs:
        if d and (Path(d) / AZURE).is_file():
            return Path(d) / AZURE
    return None


def frontier(name: str, requests: list[Request], llm: LLMDeployment, model: ReplicaModel, jobs: int) -> None:
    """Print one trace's table and verdict."""
    t0 = time.monotonic()
    rows = compare_rows(requests, model, llm.spec.autoscaling, CHOICES, workers=jobs, progress=stderr_progress)
    print(f"\n### {name}: {len(requests)} requests over {requests[-1].t / 60:.0f} min\n")
    print(table(rows))
    print()
    for v in verdicts(rows):
        print(v.text())
    print(f"({len(rows)} simulations, {time.monotonic() - t0:.1f} s wall)")


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
    """Print the frontier for both traces and the per-cycle CPU time."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=7, help="seed of the ramp trace")
    ap.add_argument("--jobs", type=int, default=2, help="simulations in parallel")
    ap.add_argument("--skip-cycle", action="store_true", help="only the frontier, not the cycle CPU time")
    a = ap.parse_args(argv)
    llm = LLMDeployment.model_validate(yaml.safe_load(SPEC.read_text()))
    model = ReplicaModel.from_spec(llm.spec)
    t0 = time.monotonic()
    print(f"Spec: {SPEC.relative_to(REPO)} (Llama-3.1-8B BF16, 1x NVIDIA L4 per replica): KV cache "
          f"{model.kv_tokens} tokens, maxNumSeqs {model.max_num_seqs}, cold start {model.cold_start:.0f} s")
    path = shared_trace()
    if path is None:
        print(f"\n### azure: skipped, {AZURE} not found (set MODELFLEET_TRACES_DIR or put shared/traces "
              "beside the clone)")
    else:
        frontier(f"azure ({ATTRIBUTION})", read_trace(str(path)), llm, model, a.jobs)
    frontier(f"ramp (bench/autoscaler/traces.py, seed {a.seed})", ramp_trace(a.seed), llm, model, a.jobs)
    print(f"\n(frontiers took {time.monotonic() - t0:.1f} s wall)")
    if not a.skip_cycle:
        cycle_cpu()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
