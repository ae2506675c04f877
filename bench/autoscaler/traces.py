"""The benchmark's second trace, generated deterministically from a seed.

The shared Azure trace (../shared/traces/azure-llm-2023-conv.csv) is one flat-ish hour of a
conversational service: the per-minute need varies by about +-30 % around its mean. This one has
a different shape on purpose, the kind that makes autoscaling pay and hurts reactive policies:

* arrivals: a non-homogeneous Poisson process over one hour; the rate climbs from 1 to 4.5 req/s
  over the first 20 minutes (a morning ramp), carries two flash crowds (minutes 25-29 at 1.7x,
  minutes 41-43 at 1.5x), then falls to 1 req/s by the end;
* sizes: a RAG/summarisation mix, longer prompts and shorter answers than the chat trace:
  prompt ~ lognormal(median 1,200 tokens, sigma 0.7) capped at 12,000; output ~ lognormal
  (median 150, sigma 0.8) capped at 1,500.

``python -m bench.autoscaler.traces --seed 7 > ramp.jsonl`` writes it in the JSONL trace format.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys

from modelfleet.autoscaler.simulate.trace import Request

SECONDS = 3600


def rate(t: float) -> float:
    """Requests per second at time ``t`` (seconds from the start)."""
    m = t / 60.0
    if m < 20:
        base = 1.0 + 3.5 * m / 20
    elif m < 45:
        base = 4.5
    else:
        base = 4.5 - 3.5 * (m - 45) / 15
    if 25 <= m < 29:
        base *= 1.7
    elif 41 <= m < 43:
        base *= 1.5
    return base


def ramp_trace(seed: int = 7, seconds: int = SECONDS) -> list[Request]:
    """The ramp-and-bursts trace (see the module docstring); the same seed gives the same requests."""
    rng = random.Random(seed)
    peak = max(rate(s) for s in range(seconds))
    out: list[Request] = []
    t = 0.0
    while True:  # thinning (Lewis-Shedler): candidates at the peak rate, kept with rate(t)/peak
        t += rng.expovariate(peak)
        if t >= seconds:
            return out
        if rng.random() * peak > rate(t):
            continue
        prompt = min(12000, max(1, round(rng.lognormvariate(math.log(1200), 0.7))))
        output = min(1500, max(1, round(rng.lognormvariate(math.log(150), 0.8))))
        out.append(Request(round(t, 3), prompt, output))


def main(argv: list[str] | None = None) -> int:
    """Write the trace as JSON Lines to stdout."""
    ap = argparse.ArgumentParser(description="Write the benchmark's ramp-and-bursts trace as JSON Lines.")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    for r in ramp_trace(a.seed):
        row = {"t": r.t, "prompt_tokens": r.prompt_tokens, "output_tokens": r.output_tokens}
        sys.stdout.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
