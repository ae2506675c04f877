"""Which runs a comparison makes (the sweeps), and running them, in parallel when asked."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from modelfleet.api import AutoscalingSpec
from modelfleet.autoscaler.simulate.baselines import Hpa, Keda, Static
from modelfleet.autoscaler.simulate.fleet import Autoscaler, RunResult, simulate
from modelfleet.autoscaler.simulate.modelfleet_policy import Modelfleet
from modelfleet.autoscaler.simulate.oracle import Oracle, oracle_replica_hours, oracle_replicas
from modelfleet.autoscaler.simulate.replica import ReplicaModel
from modelfleet.autoscaler.simulate.report import row
from modelfleet.autoscaler.simulate.trace import Request

CHOICES = ("modelfleet", "hpa", "keda", "static", "oracle")
#: Per-pod targets for waiting requests (HPA) and totals per replica (KEDA) tried on `waiting`.
WAITING_TARGETS = (1.0, 2.0, 4.0, 8.0)
#: waiting+running targets, as fractions of the batch a replica runs at full load for this trace.
CONCURRENCY_FRACTIONS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1)


def parse_compare(text: str) -> tuple[str, ...]:
    """``hpa,keda`` -> the autoscalers to run besides modelfleet; ``all`` / ``none``; ValueError on junk."""
    text = text.strip().lower()
    if text == "all":
        return CHOICES
    if text in ("", "none"):
        return ("modelfleet",)
    picked = [x.strip() for x in text.split(",") if x.strip()]
    bad = [x for x in picked if x not in CHOICES]
    if bad:
        raise ValueError(f"unknown autoscaler(s) {', '.join(bad)}; choose from {', '.join(CHOICES)}, all or none")
    return tuple(dict.fromkeys(["modelfleet", *picked]))


def full_batch(requests: Sequence[Request], model: ReplicaModel) -> int:
    """Sequences a replica runs at once for this trace's mean request (KV room and maxNumSeqs)."""
    mean = sum(r.prompt_tokens + r.output_tokens for r in requests) / max(1, len(requests))
    return model.concurrency(mean)


@dataclass(frozen=True)
class Job:
    """One run to make (picklable, for worker processes)."""

    kind: str
    arg: Any
    cold_start: float | None = None


def jobs(compare: Sequence[str], requests: Sequence[Request], model: ReplicaModel,
         spec: AutoscalingSpec) -> list[Job]:
    """The runs of a comparison: modelfleet, then each baseline swept over its threshold."""
    out = [Job("modelfleet", None)]
    batch = full_batch(requests, model)
    wr = sorted({max(1, round(batch * f)) for f in CONCURRENCY_FRACTIONS})
    if "hpa" in compare:
        out += [Job("hpa", ("waiting", x)) for x in WAITING_TARGETS]
        out += [Job("hpa", ("waiting+running", float(x))) for x in wr]
    if "keda" in compare:
        out += [Job("keda", ("waiting", x)) for x in (2.0, 8.0)]
        out += [Job("keda", ("waiting+running", float(x))) for x in wr]
    if "static" in compare or "oracle" in compare:
        peak = max(oracle_replicas(requests, model, spec.min_replicas))
        if "static" in compare:
            out += [Job("static", (min(spec.max_replicas, peak), "oracle's peak")),
                    Job("static", (max(spec.min_replicas, math.ceil(0.75 * peak)), "3/4 of the peak"))]
        if "oracle" in compare:
            out.append(Job("oracle", None, cold_start=0.0))
    return out


def _autoscaler(job: Job, requests: Sequence[Request], model: ReplicaModel, spec: AutoscalingSpec) -> Autoscaler:
    lo, hi = spec.min_replicas, spec.max_replicas
    if job.kind == "modelfleet":
        return Modelfleet(spec, model.max_num_seqs, model.kv_tokens)
    if job.kind == "hpa":
        return Hpa(job.arg[0], job.arg[1], lo, hi)
    if job.kind == "keda":
        return Keda(job.arg[0], job.arg[1], lo, hi)
    if job.kind == "static":
        return Static(*job.arg)
    return Oracle(oracle_replicas(requests, model, lo))


def _initial(job: Job, requests: Sequence[Request], model: ReplicaModel, spec: AutoscalingSpec) -> int:
    if job.kind == "static":
        return int(job.arg[0])
    return initial_replicas(requests, model, spec)


def initial_replicas(requests: Sequence[Request], model: ReplicaModel, spec: AutoscalingSpec) -> int:
    """What every autoscaled fleet starts with: the oracle's need over the first 3 minutes.

    The fleet was serving before the trace window opened (the shared trace starts mid-traffic,
    with a partial first minute), so no policy pays for a cold fleet at t = 0.
    """
    first = max(oracle_replicas(requests, model, spec.min_replicas)[:3])
    return max(spec.min_replicas, min(spec.max_replicas, first))


def run_job(job: Job, requests: Sequence[Request], model: ReplicaModel, spec: AutoscalingSpec) -> RunResult:
    """Replay the trace under one job's autoscaler."""
    return simulate(requests, model, _autoscaler(job, requests, model, spec),
                    initial=_initial(job, requests, model, spec), cold_start=job.cold_start)


_SHARED: dict[str, Any] = {}


def _init(requests: Sequence[Request], model: ReplicaModel, spec: AutoscalingSpec) -> None:
    _SHARED.update(requests=requests, model=model, spec=spec)


def _work(job: Job) -> tuple[RunResult, float]:
    t0 = time.monotonic()
    res = run_job(job, _SHARED["requests"], _SHARED["model"], _SHARED["spec"])
    return res, time.monotonic() - t0


def compare_rows(requests: Sequence[Request], model: ReplicaModel, spec: AutoscalingSpec,
                 compare: Sequence[str], *, workers: int = 1,
                 progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Run every job and return one row each (the oracle's replica-hours are its analytic floor)."""
    todo = jobs(compare, requests, model, spec)
    floor = oracle_replica_hours(requests, model, spec.min_replicas)
    results: list[RunResult] = []
    t0 = time.monotonic()

    def note(k: int, res: RunResult, took: float) -> None:
        if progress is not None:
            progress(f"[{k}/{len(todo)}] {res.autoscaler} {res.setting}: {took:.1f} s "
                     f"({time.monotonic() - t0:.0f} s elapsed)")

    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(workers, initializer=_init, initargs=(requests, model, spec)) as pool:
            for k, (res, took) in enumerate(pool.map(_work, todo), 1):
                results.append(res)
                note(k, res, took)
    else:
        _init(requests, model, spec)
        for k, job in enumerate(todo, 1):
            res, took = _work(job)
            results.append(res)
            note(k, res, took)
    return [row(r, floor, floor if r.autoscaler == "oracle" else None) for r in results]


def stderr_progress(line: str) -> None:
    """Progress to stderr (for long simulations)."""
    print(line, file=sys.stderr, flush=True)
