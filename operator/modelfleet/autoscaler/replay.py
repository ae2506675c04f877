"""Replay recorded observations through the policy: what would the autoscaler have decided?

Input: JSON Lines, one object per line::

    {"t": 0, "waiting": 12, "running": 96, "ready_replicas": 3, "replicas": 3}

``t`` is seconds (any origin, non-decreasing); ``waiting`` / ``running`` are numbers or null
(null = metrics missing at that time); ``ready_replicas`` / ``replicas`` are integers. Blank
lines are skipped. Output: one ``{"t", "desired_replicas", "reason"}`` per input line.

The replay does not feed its decisions back (the recorded ``replicas`` are what really ran),
so it answers "what would this spec have recommended on this data".
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelfleet.api import KIND, AutoscalingSpec, LLMDeployment
from modelfleet.autoscaler.policy import Observation, PolicyState, decide


class ReplayError(Exception):
    """Bad input; the message is ``FILE:LINE: problem`` (or ``FILE: problem``)."""


@dataclass(frozen=True)
class Sample:
    """One observations line."""

    t: float
    waiting: float | None
    running: float | None
    ready_replicas: int
    replicas: int


def load_deployment(path: str) -> tuple[AutoscalingSpec, int]:
    """The first LLMDeployment in a YAML file: its autoscaling spec and engine.maxNumSeqs."""
    try:
        docs = list(yaml.safe_load_all(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as e:
        raise ReplayError(f"{path}: {e}") from e
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == KIND:
            try:
                obj = LLMDeployment.model_validate(doc)
            except ValidationError as e:
                first = e.errors()[0]
                where = ".".join(str(x) for x in first["loc"])
                raise ReplayError(f"{path}: invalid LLMDeployment: {where}: {first['msg']}") from e
            return obj.spec.autoscaling, obj.spec.engine.max_num_seqs
    raise ReplayError(f"{path}: no LLMDeployment (kind: {KIND}) in the file")


def _number(obj: dict[str, Any], key: str, nullable: bool) -> float | None:
    if key not in obj:
        raise ValueError(f'missing "{key}"')
    v = obj[key]
    if v is None and nullable:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ValueError(f'"{key}" must be a non-negative number{" or null" if nullable else ""}, got {v!r}')
    return float(v)


def _count(obj: dict[str, Any], key: str) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f'"{key}" must be a non-negative integer, got {v!r}' if key in obj else f'missing "{key}"')
    return v


def parse_observations(lines: Iterable[str], filename: str) -> list[Sample]:
    """Validate every line; the first problem raises ``ReplayError("FILE:LINE: problem")``."""
    out: list[Sample] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            s = Sample(_number(obj, "t", nullable=False) or 0.0, _number(obj, "waiting", True),
                       _number(obj, "running", True), _count(obj, "ready_replicas"), _count(obj, "replicas"))
            if out and s.t < out[-1].t:
                raise ValueError(f'"t" goes backwards ({s.t:g} after {out[-1].t:g})')
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            raise ReplayError(f"{filename}:{n}: {e}") from e
        out.append(s)
    return out


def replay(spec: AutoscalingSpec, max_num_seqs: int, samples: Iterable[Sample]) -> list[dict[str, Any]]:
    """Run the policy over the samples; unready time is measured from the samples themselves."""
    state = PolicyState()
    unready_from: float | None = None
    out = []
    for s in samples:
        starting = s.replicas - s.ready_replicas > 0
        unready_from = (s.t if unready_from is None else unready_from) if starting else None
        obs = Observation(s.waiting, s.running, None, s.ready_replicas, s.replicas,
                          unready_seconds=None if unready_from is None else s.t - unready_from)
        d = decide(spec, obs, state, s.t, max_num_seqs)
        state = d.state
        out.append({"t": s.t, "desired_replicas": d.desired_replicas, "reason": d.reason})
    return out
