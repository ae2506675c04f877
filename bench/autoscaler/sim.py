"""A discrete-time queueing simulation of vLLM replicas under an autoscaler.

Model (1 s steps):

* Requests arrive by a Poisson process whose rate follows the trace; each has a prompt and an
  output length (log-normal), and occupies one of a replica's ``max_num_seqs`` slots for
  ``prompt / prefill_rate + output / decode_rate`` seconds.
* One FIFO queue in front of the replicas (as behind a queue-aware gateway); a request starts
  on the ready replica with the most free slots. Its queue wait is start - arrival.
* A new pod is billed from creation and becomes ready after a cold start drawn from
  ``cold_start`` (image pull, weights to GPU, warm-up). On scale-down, pods that are not ready go
  first, then the least busy (pod-deletion-cost); a busy pod drains (no new requests, billed
  until its last request ends), so no request is lost.
* The autoscaler sees metrics from the last Prometheus scrape (every ``scrape_interval`` s) and
  runs every ``period`` s. Replica-seconds = pod-seconds billed (starting, ready or draining).

Both autoscalers get the same trace, request sizes, cold starts and scrape delay.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from modelfleet.autoscaler.policy import Observation


@dataclass(frozen=True)
class Engine:
    """One replica's serving characteristics."""

    max_num_seqs: int = 32
    prefill_tokens_per_s: float = 8000.0
    decode_tokens_per_s: float = 40.0  # per sequence
    prompt_mean: float = 800.0
    output_mean: float = 250.0
    cold_start: tuple[float, float] = (60.0, 120.0)


@dataclass
class Pod:
    """A simulated vLLM pod."""

    ready_at: float
    created: float = 0.0
    running: int = 0
    draining: bool = False


@dataclass
class Result:
    """What one run produced."""

    waits: list[float] = field(default_factory=list)
    replica_seconds: float = 0.0
    scale_events: int = 0
    max_replicas_seen: int = 0

    def p(self, q: float) -> float:
        """The q-quantile of queue waits (nearest rank)."""
        if not self.waits:
            return 0.0
        s = sorted(self.waits)
        return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


#: An autoscaler: (observation, now) -> desired replicas. Stateful closures are fine.
Autoscaler = Callable[[Observation, float], int]


def requests(rates: list[float], engine: Engine, seed: int) -> list[tuple[float, float]]:
    """(arrival time, service seconds) for a per-second rate list; deterministic for a seed."""
    rng = random.Random(seed)
    sigma = 0.8
    mu_p = math.log(engine.prompt_mean) - sigma**2 / 2
    mu_o = math.log(engine.output_mean) - sigma**2 / 2
    out = []
    for sec, rate in enumerate(rates):
        t = sec + rng.expovariate(rate) if rate > 0 else sec + 1.0
        while t < sec + 1:
            service = (
                rng.lognormvariate(mu_p, sigma) / engine.prefill_tokens_per_s
                + min(4096, rng.lognormvariate(mu_o, sigma)) / engine.decode_tokens_per_s
            )
            out.append((t, service))
            t += rng.expovariate(rate)
    return out


def simulate(
    rates: list[float],
    autoscaler: Autoscaler,
    *,
    engine: Engine,
    period: float,
    initial: int,
    seed: int,
    scrape_interval: float = 15.0,
    drain_limit: float = 3600.0,
) -> Result:
    """Run one trace through replicas scaled by ``autoscaler``; see the module docstring."""
    reqs = requests(rates, engine, seed)
    cold = random.Random(seed + 1)
    res = Result()
    pods: list[Pod] = [Pod(ready_at=0.0) for _ in range(initial)]
    queue: deque[tuple[float, float]] = deque()
    finishing: list[tuple[float, int, int]] = []  # (finish time, seq, pod id)
    by_id: dict[int, Pod] = {id(p): p for p in pods}
    seq = 0
    i = 0
    scraped = Observation(0.0, 0.0, None, initial, initial)
    end = len(rates) + drain_limit
    t = 0.0
    while t < end and (t < len(rates) or queue or finishing):
        # completions
        while finishing and finishing[0][0] <= t:
            _, _, pid = heapq.heappop(finishing)
            pod = by_id[pid]
            pod.running -= 1
            if pod.draining and pod.running == 0:
                pods.remove(pod)
                del by_id[pid]
        # arrivals during [t, t + 1)
        while i < len(reqs) and reqs[i][0] < t + 1:
            queue.append(reqs[i])
            i += 1
        # dispatch FIFO to the ready pod with the most free slots; a request that finds a free
        # slot starts when it arrives, otherwise at the first step with a free slot
        ready = [p for p in pods if p.ready_at <= t and not p.draining]
        while queue and ready:
            pod = min(ready, key=lambda p: p.running)
            if pod.running >= engine.max_num_seqs:
                break
            arrival, service = queue.popleft()
            start = max(t, arrival)
            res.waits.append(start - arrival)
            pod.running += 1
            seq += 1
            heapq.heappush(finishing, (start + service, seq, id(pod)))
        # metrics scrape
        if t % scrape_interval == 0:
            live = [p for p in pods if not p.draining]
            scraped = Observation(
                float(sum(1 for a, _ in queue if a <= t)),
                float(sum(p.running for p in ready)),
                None,
                len(ready),
                len(live),
                pods_reporting=len(ready),
            )
        # autoscaler
        if t % period == 0 and t < len(rates):
            live = [p for p in pods if not p.draining]
            unready = [t - p.created for p in live if p.ready_at > t]
            obs = Observation(
                scraped.waiting,
                scraped.running,
                None,
                len(ready),
                len(live),
                pods_reporting=len(ready),
                unready_seconds=max(unready) if unready else None,
            )
            desired = autoscaler(obs, t)
            if desired != len(live):
                res.scale_events += 1
            for _ in range(desired - len(live)):
                p = Pod(ready_at=t + cold.uniform(*engine.cold_start), created=t)
                pods.append(p)
                by_id[id(p)] = p
            if desired < len(live):
                victims = sorted(live, key=lambda p: (p.ready_at <= t, p.running))[: len(live) - desired]
                for p in victims:
                    if p.running == 0:
                        pods.remove(p)
                        del by_id[id(p)]
                    else:
                        p.draining = True
        res.replica_seconds += len(pods)
        res.max_replicas_seen = max(res.max_replicas_seen, len(pods))
        t += 1.0
    res.waits.extend(t - a for a, _ in queue)  # never served: counted with what they waited so far
    return res
