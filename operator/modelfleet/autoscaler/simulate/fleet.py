"""Replay a trace through a fleet of simulated replicas under one autoscaler.

Time advances in ticks of ``dt`` seconds (0.25 s by default). Each tick:

1. arrivals of the tick go, in order, to the ready replica with the fewest requests (waiting +
   running), as a least-request gateway or Envoy does; with no ready replica they wait at the
   gateway;
2. every replica admits, prefills and decodes (:class:`~.replica.Replica`);
3. every ``scrape_interval`` seconds Prometheus scrapes each ready pod (waiting, running, KV
   usage): autoscalers only see the last scrape, as in production;
4. every ``autoscaler.period`` seconds the autoscaler sets the Deployment's replicas. A new pod
   serves after the model's cold start; a removed pod leaves the load balancer at once but
   finishes what it holds (vLLM drains on SIGTERM) and is billed until then. Starting pods go
   first, then the least-loaded ready ones (pod-deletion-cost).

Replica-hours bill every pod from creation to removal, over the trace's duration. After the
last arrival the fleet is frozen and runs until every request has had its first token (at most
an hour), so late requests count in the TTFT percentiles.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from modelfleet.autoscaler.simulate.replica import Replica, ReplicaModel
from modelfleet.autoscaler.simulate.trace import Request

DEFAULT_TICK_SECONDS = 0.25
#: A common ServiceMonitor/PodMonitor interval for vLLM pods.
DEFAULT_SCRAPE_SECONDS = 15.0
DRAIN_LIMIT_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class PodSample:
    """One pod's series in the last scrape."""

    waiting: int
    running: int
    kv_usage: float


@dataclass(frozen=True)
class FleetView:
    """What an autoscaler can know at one decision: the cluster now, metrics as last scraped."""

    now: float
    replicas: int  # the Deployment's replicas (pods not being removed)
    ready: int
    starting: int
    unready_seconds: float | None  # age of the oldest starting pod
    samples: tuple[PodSample, ...]  # last scrape of the pods that are still in service
    startup_seconds: float | None  # median creation-to-ready time of the pods seen so far


class Autoscaler(Protocol):
    """A policy under test: every ``period`` seconds, the replicas it wants."""

    name: str
    setting: str
    period: float

    def desired(self, view: FleetView) -> int:
        """The replica count to set now."""
        ...


@dataclass
class RunResult:
    """What one replay produced."""

    autoscaler: str
    setting: str
    ttfts: list[float] = field(default_factory=list)
    replica_seconds: float = 0.0
    scale_events: int = 0
    max_replicas: int = 0
    requests: int = 0
    completed: int = 0
    duration: float = 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank q-quantile of TTFT (seconds); 0 with no requests."""
        if not self.ttfts:
            return 0.0
        s = sorted(self.ttfts)
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _remove(pods: list[Replica], n: int, now: float) -> list[Replica]:
    """Take ``n`` pods out of service: starting ones first (newest first), then the least loaded."""
    starting = sorted((p for p in pods if p.ready_at > now), key=lambda p: -p.created)
    ready = sorted((p for p in pods if p.ready_at <= now), key=lambda p: p.load())
    return (starting + ready)[:n]


def simulate(requests: Sequence[Request], model: ReplicaModel, autoscaler: Autoscaler, *, initial: int,
             dt: float = DEFAULT_TICK_SECONDS, scrape_interval: float = DEFAULT_SCRAPE_SECONDS,
             cold_start: float | None = None,
             progress: Callable[[float], None] | None = None) -> RunResult:
    """Replay ``requests`` through replicas of ``model`` scaled by ``autoscaler``; see the module docstring."""
    cold = model.cold_start if cold_start is None else cold_start
    res = RunResult(autoscaler.name, autoscaler.setting, requests=len(requests))
    end = (requests[-1].t if requests else 0.0) + dt
    res.duration = end
    pods = [Replica(model, 0.0, 0.0) for _ in range(initial)]
    draining: list[Replica] = []
    gateway: deque[Request] = deque()
    startups: list[float] = []
    scraped: dict[int, PodSample] = {}
    next_scrape = 0.0
    next_decision = 0.0
    i, n = 0, len(requests)
    steps = 0
    t = 0.0
    res.max_replicas = initial
    while True:
        t = steps * dt
        live = t < end
        if not live and i >= n and not gateway and all(p.idle() for p in pods) and not draining:
            break
        if t > end + DRAIN_LIMIT_SECONDS:
            break
        ready = [p for p in pods if p.ready_at <= t]
        for p in pods:
            if t - dt < p.ready_at <= t and p.ready_at > p.created:  # warm initial pods are not startups
                startups.append(p.ready_at - p.created)
        # 1. arrivals
        limit = t + dt
        while gateway and ready:
            min(ready, key=Replica.load).queue.append(gateway.popleft())
        while i < n and requests[i].t < limit:
            req = requests[i]
            i += 1
            if ready:
                min(ready, key=Replica.load).queue.append(req)
            else:
                gateway.append(req)
        # 2. serve
        for p in ready:
            res.completed += p.tick(t, dt, res.ttfts)
        if draining:
            for p in draining:
                res.completed += p.tick(t, dt, res.ttfts)
            draining = [p for p in draining if not p.idle()]
        # 3. scrape
        if live and t >= next_scrape:
            next_scrape += scrape_interval
            scraped = {id(p): PodSample(len(p.queue), len(p.running), p.kv_reserved / model.kv_tokens)
                       for p in ready}
        # 4. decide
        if live and t >= next_decision:
            next_decision += autoscaler.period
            starting = [p for p in pods if p.ready_at > t]
            view = FleetView(
                now=t, replicas=len(pods), ready=len(ready), starting=len(starting),
                unready_seconds=max(t - p.created for p in starting) if starting else None,
                samples=tuple(scraped[id(p)] for p in ready if id(p) in scraped),
                startup_seconds=statistics.median(startups) if startups else None)
            want = max(0, autoscaler.desired(view))
            if want != len(pods):
                res.scale_events += 1
                if want > len(pods):
                    pods.extend(Replica(model, t, t + cold) for _ in range(want - len(pods)))
                else:
                    gone = _remove(pods, len(pods) - want, t)
                    for p in gone:
                        pods.remove(p)
                        if p.ready_at <= t and not p.idle():
                            p.draining = True
                            draining.append(p)
                res.max_replicas = max(res.max_replicas, len(pods))
        if live:
            billed_end = min(dt, end - t)
            res.replica_seconds += (len(pods) + len(draining)) * billed_end
        if progress is not None and steps % 2400 == 0:
            progress(t)
        steps += 1
    # Requests that never got a first token count with the time they waited (a lower bound).
    for p in pods + draining:
        res.ttfts.extend(t - r.t for r in p.queue)
    res.ttfts.extend(t - r.t for r in gateway)
    res.ttfts.extend(t - r.t for r in requests[i:])
    return res
