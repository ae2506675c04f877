"""Deterministic load traces (requests per second, one value per second).

* ``bursty``: 2 h. A base load of 4 req/s with noise, and bursts at random times (every 8-20 min)
  that ramp within 30 s to 3-8x the base, last 2-8 min and decay within a minute - the shape of
  batch jobs and agent fan-outs hitting a shared model.
* ``diurnal``: 24 h. A day curve from 1 req/s at night to 24 req/s in the afternoon (raised
  cosine with a lunch dip), with slow random drift - interactive traffic over a working day.
"""

from __future__ import annotations

import math
import random


def bursty(seed: int = 7, seconds: int = 7200, base: float = 4.0) -> list[float]:
    """Base load plus random bursts."""
    rng = random.Random(seed)
    rates = [base * (1 + 0.1 * math.sin(s / 300)) for s in range(seconds)]
    t = rng.uniform(300, 600)
    while t < seconds:
        peak = base * rng.uniform(3, 8)
        hold = rng.uniform(120, 480)
        start = int(t)
        for s in range(start, min(seconds, start + int(30 + hold + 60))):
            x = s - start
            f = x / 30 if x < 30 else 1.0 if x < 30 + hold else max(0.0, 1 - (x - 30 - hold) / 60)
            rates[s] = max(rates[s], base + (peak - base) * f)
        t += hold + rng.uniform(480, 1200)
    return rates


def diurnal(seed: int = 11, seconds: int = 86400, low: float = 1.0, high: float = 24.0) -> list[float]:
    """A working day: night trough, morning ramp, lunch dip, afternoon peak."""
    rng = random.Random(seed)
    drift = 1.0
    rates = []
    for s in range(seconds):
        if s % 60 == 0:
            drift = min(1.2, max(0.8, drift + rng.gauss(0, 0.02)))
        h = s / 3600
        day = 0.5 - 0.5 * math.cos(2 * math.pi * (h - 4) / 24)  # 0 at 04:00, 1 at 16:00
        lunch = 1 - 0.25 * math.exp(-((h - 12.5) ** 2) / 0.5)
        rates.append((low + (high - low) * day**1.5 * lunch) * drift)
    return rates
