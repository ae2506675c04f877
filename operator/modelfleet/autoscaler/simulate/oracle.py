"""The floor: minute by minute, the fewest replicas whose capacity carries that minute's load.

It knows every arrival in advance and pays no cold start and no metric lag. A request's work
is the GPU time it takes on a replica running a full batch: its prefill plus its output tokens'
share of decode steps at the concurrency the KV cache and ``maxNumSeqs`` allow for this minute's
request sizes::

    B      = min(maxNumSeqs, KV tokens // mean(prompt + output))       # full batch
    step   = step(B, B x mean(prompt + output / 2))                    # one decode step at full batch
    work   = sum(prefill(prompt) + output x step / B)                  # GPU-seconds of the minute
    replicas(minute) = max(minReplicas, ceil(work / 60))

Replica-hours = sum of replicas(minute) / 60, pro rata for a last partial minute. Every other
policy's replica-hours are reported as a ratio to this.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from modelfleet.autoscaler.simulate.fleet import FleetView
from modelfleet.autoscaler.simulate.replica import ReplicaModel
from modelfleet.autoscaler.simulate.trace import Request


def minute_work(requests: Sequence[Request], model: ReplicaModel) -> list[float]:
    """GPU-seconds of work arriving in each minute of the trace."""
    if not requests:
        return []
    minutes: list[list[Request]] = [[] for _ in range(int(requests[-1].t // 60) + 1)]
    for r in requests:
        minutes[int(r.t // 60)].append(r)
    out = []
    for reqs in minutes:
        if not reqs:
            out.append(0.0)
            continue
        need = sum(r.prompt_tokens + r.output_tokens for r in reqs) / len(reqs)
        ctx = sum(r.prompt_tokens + r.output_tokens / 2 for r in reqs) / len(reqs)
        batch = model.concurrency(need)
        per_token = model.step_seconds(batch, batch * ctx) / batch
        out.append(sum(model.prefill_seconds(r.prompt_tokens) + r.output_tokens * per_token for r in reqs))
    return out


def oracle_replicas(requests: Sequence[Request], model: ReplicaModel, min_replicas: int = 1) -> list[int]:
    """Replicas per minute of the trace."""
    return [max(min_replicas, math.ceil(w / 60.0 - 1e-9)) for w in minute_work(requests, model)]


def oracle_replica_hours(requests: Sequence[Request], model: ReplicaModel, min_replicas: int = 1) -> float:
    """The oracle's replica-hours over the trace's duration."""
    plan = oracle_replicas(requests, model, min_replicas)
    if not plan:
        return 0.0
    duration = requests[-1].t
    full = sum(plan[:-1]) * 60.0
    last = plan[-1] * (duration - 60.0 * (len(plan) - 1))
    return (full + last) / 3600.0


class Oracle:
    """The oracle's schedule as an autoscaler (replay it with no cold start to see its latency)."""

    name = "oracle"
    period = 60.0

    def __init__(self, plan: list[int]) -> None:
        self.plan = plan
        self.setting = "per-minute need, known in advance"

    def desired(self, view: FleetView) -> int:
        """The planned replicas of the current minute."""
        minute = min(len(self.plan) - 1, int(view.now // 60))
        return self.plan[minute]
