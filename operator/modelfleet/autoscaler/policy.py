"""The autoscaling policy: observations in, a replica decision out. Pure; no I/O, no clock.

How a decision is made (one call of :func:`decide` per cycle and LLMDeployment):

1. **Metrics gate.** No queue metric, stale metrics, or no ready pod reporting: *hold* at the
   current replicas (clamped into [min, max] only), ``metrics_available=False``, and say why.
   Nothing is recorded, so a gap in metrics never lowers the stabilization window's maximum.
2. **Raw need**, in replicas. With the planner's KV capacity per replica (``ReplicaCapacity``,
   from ``status.capacity.kvCacheTokens``) and a KV-usage reading, the policy knows how many
   sequences one replica really runs at once for the current requests, which ``maxNumSeqs``
   alone overstates whenever the KV cache fills first::

       per_seq = kv_cache_usage x kv_cache_tokens x serving / running   # KV tokens per running request
       C       = min(maxNumSeqs, kv_cache_tokens / per_seq)              # full batch of one replica
       queued  = max(0, waiting - T x serving - C x coming)               # queue the coming pods won't absorb
       need    = running + queued / 2                                      # sequences that want a slot
       raw     = (need + z x sqrt(need)) / C                               # replicas, with headroom

   ``z x sqrt(need)`` is square-root safety staffing (the headroom a pool of servers needs grows
   with the square root of its load, so large fleets run hotter than small ones; a fixed
   utilisation target cannot do that). ``z`` is ``HEADROOM_SIGMAS`` (2) times
   ``sqrt(startup / 60 s)`` (between 1 and 2) with the *observed* pod startup time: the longer a
   new pod takes, the more the load can move before it serves. Only half the queue counts as
   load (``BACKLOG_BATCHES``): a queue is partly backlog that the current pods drain, and each
   starting pod is credited with a full batch, so a queue that grows during a cold start does not
   order the same replicas again.

   Without KV capacity or KV usage (older status, older vLLM) the original rule applies
   (S = ``max_num_seqs``, T = ``target_queue_depth``)::

       load    = max(running / S, kv_cache_usage * ready)    # replicas kept busy right now
       excess  = max(0, waiting - T * ready - (S + T) * starting)
       raw     = load + starting + excess / T

   At saturation ``running / S == ready``, so ``raw == ready`` exactly when the queue is T per
   ready replica: the target *is* the queue depth per ready replica, as in an HPA with an
   ``AverageValue`` target. Each extra T waiting requests ask for one more replica. Starting pods
   (not ready yet, not unschedulable) are counted as capacity that is coming: they are expected
   to absorb S + T requests each when ready, which keeps a queue that builds up during a cold
   start from ordering the same replicas twice. They are *not* idle capacity: per-replica load is
   computed from ready pods only. Pods unready for more than ``unready_grace`` seconds
   (``Observation.unready_seconds``, from pod creation times, so it survives restarts) count as
   absent, so a stuck pod never blocks a scale-down forever (the ReplicaSet removes unready
   pods first).
3. **Tolerance**: when ``raw / current`` is within ``1 ± tolerance`` the recommendation is the
   current count; otherwise ``ceil(raw)``, clamped into [min, max].
4. **Stabilization** (HPA-style): recommendations are kept as change points in
   ``PolicyState``; scale up to the *lowest* recommendation of the last
   ``scale_up_stabilization_seconds`` (0: at once), scale down only to the *highest* of the
   last ``scale_down_stabilization_seconds``. Then step limits: at most ``max_scale_up_step``
   added and ``max_scale_down_step`` removed per decision.
5. **Scale-down guards**: no scale-down while the queue is above ``tolerance * T`` per ready
   replica, while the running load would not fit the remaining replicas
   (``running > remaining * S``), while the running metric is missing, or while pods are
   starting (within the grace).
6. **Scale-up guard**: when pods are Pending unschedulable (no GPU free), adding more pods does
   not help: hold, ``limited=True``.

The state (:class:`PolicyState`) round-trips through ``status.autoscaler.recommendations`` and
``lastScaleTime`` so that a restarted operator keeps its stabilization windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from modelfleet.api import AutoscalingSpec

Action = Literal["scale-up", "scale-down", "hold"]

#: Seconds a pod may stay not-ready before it stops deferring scale-downs.
DEFAULT_UNREADY_GRACE_SECONDS = 600.0
#: Upper bound on stored change points (keeps status small whatever the windows are).
MAX_RECOMMENDATIONS = 64
#: Square-root headroom factor at a startup time of one minute or less (see the module docstring).
HEADROOM_SIGMAS = 2.0
#: A queue counts as this many times less load than running requests (part of it is backlog).
BACKLOG_BATCHES = 2.0


def iso(t: float) -> str:
    """Epoch seconds to RFC 3339 UTC (second precision), as Kubernetes writes times."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s: str) -> float:
    """RFC 3339 (with ``Z`` or an offset) to epoch seconds."""
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Observation:
    """What one cycle saw for one LLMDeployment (metric values are sums over its ready pods)."""

    waiting: float | None
    running: float | None
    kv_cache_usage: float | None = None
    ready_replicas: int = 0
    replicas: int = 0
    unschedulable: int = 0
    pods_reporting: int | None = None
    stale: bool = False
    stale_reason: str = ""
    #: How long the longest-waiting not-ready pod has existed (from its creationTimestamp);
    #: None: unknown, treated as within the grace.
    unready_seconds: float | None = None


@dataclass(frozen=True)
class ReplicaCapacity:
    """What the operator knows about one replica beyond the metrics (all optional)."""

    #: KV-cache capacity in tokens, from the planner (status.capacity).
    kv_cache_tokens: int | None = None
    #: How long a new pod takes from creation to Ready, as observed on this deployment's pods.
    startup_seconds: float | None = None


@dataclass(frozen=True)
class Recommendation:
    """From time ``t`` on, the policy recommended ``replicas`` (until the next change point)."""

    t: float
    replicas: int


@dataclass(frozen=True)
class PolicyState:
    """What the policy remembers between cycles; persisted in ``status.autoscaler``."""

    recommendations: tuple[Recommendation, ...] = ()
    last_scale_time: float | None = None

    def to_status(self) -> dict[str, Any]:
        """The camelCase fields of ``status.autoscaler`` this state lives in."""
        return {
            "recommendations": [{"time": iso(r.t), "replicas": r.replicas} for r in self.recommendations],
            "lastScaleTime": iso(self.last_scale_time) if self.last_scale_time is not None else None,
        }

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> PolicyState:
        """Rebuild from a stored ``status.autoscaler`` (camelCase or snake_case); junk is skipped."""
        if not status:
            return cls()
        recs: list[Recommendation] = []
        for item in status.get("recommendations") or []:
            try:
                recs.append(Recommendation(parse_iso(str(item["time"])), int(item["replicas"])))
            except (KeyError, TypeError, ValueError):
                continue
        recs.sort(key=lambda r: r.t)
        last = status.get("lastScaleTime", status.get("last_scale_time"))
        try:
            last_t = parse_iso(str(last)) if last else None
        except ValueError:
            last_t = None
        return cls(tuple(recs), last_t)


@dataclass(frozen=True)
class Decision:
    """The outcome of one :func:`decide` call."""

    desired_replicas: int
    action: Action
    reason: str
    metrics_available: bool
    limited: bool
    state: PolicyState
    limited_reason: str = ""
    raw: float | None = None
    details: dict[str, float] = field(default_factory=dict)


def _record(recs: tuple[Recommendation, ...], now: float, value: int, keep: float) -> tuple[Recommendation, ...]:
    """Append a change point (only when the value changes) and drop points older than needed.

    The newest point that starts before ``now - keep`` is kept: it was still in effect then.
    """
    items = [r for r in recs if r.t <= now]
    if not items or items[-1].replicas != value:
        items.append(Recommendation(now, value))
    cutoff = now - keep
    first = 0
    for i, r in enumerate(items):
        if r.t <= cutoff:
            first = i
    items = items[first:]
    return tuple(items[-MAX_RECOMMENDATIONS:])


def _window(recs: tuple[Recommendation, ...], now: float, seconds: float) -> list[int]:
    """Values in effect at any time within ``[now - seconds, now]``."""
    start = now - seconds
    out = []
    for i, r in enumerate(recs):
        end = recs[i + 1].t if i + 1 < len(recs) else math.inf
        if end > start:
            out.append(r.replicas)
    return out


def _headroom_sigmas(capacity: ReplicaCapacity | None) -> float:
    """Safety factor on the square-root headroom: grows with the observed startup time."""
    startup = capacity.startup_seconds if capacity is not None else None
    scale = math.sqrt(min(4.0, max(1.0, startup / 60.0))) if startup else 1.0
    return HEADROOM_SIGMAS * scale


def _batch_capacity(max_num_seqs: float, kv_usage: float | None, running: float | None, serving: int,
                    capacity: ReplicaCapacity | None) -> float | None:
    """Sequences one replica runs at once for the current requests: maxNumSeqs, or fewer when
    the KV cache fills first. None without the planner's KV capacity or a KV-usage reading."""
    if capacity is None or not capacity.kv_cache_tokens or not kv_usage or not running or serving <= 0:
        return None
    tokens_per_seq = kv_usage * capacity.kv_cache_tokens * serving / running
    return max(1.0, min(max_num_seqs, capacity.kv_cache_tokens / tokens_per_seq))


def _clamp(n: int, spec: AutoscalingSpec) -> int:
    return max(spec.min_replicas, min(spec.max_replicas, n))


def _fmt(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def decide(
    spec: AutoscalingSpec,
    obs: Observation,
    state: PolicyState,
    now: float,
    max_num_seqs: int,
    *,
    unready_grace: float = DEFAULT_UNREADY_GRACE_SECONDS,
    capacity: ReplicaCapacity | None = None,
) -> Decision:
    """Decide the replica count for one LLMDeployment; see the module docstring for the rules."""
    current = max(0, obs.replicas)
    ready = max(0, min(obs.ready_replicas, current) if current else obs.ready_replicas)
    unsched = max(0, obs.unschedulable)
    starting = max(0, current - ready - unsched)
    in_grace = starting > 0 and (obs.unready_seconds is None or obs.unready_seconds < unready_grace)
    counted_starting = starting if in_grace else 0
    base_state = state
    clamped = _clamp(current, spec)
    bounds = f"{current}→{clamped} (outside min {spec.min_replicas}/max {spec.max_replicas})"

    def finish(desired: int, reason: str, available: bool, st: PolicyState, limited_reason: str = "",
               raw: float | None = None, details: dict[str, float] | None = None) -> Decision:
        action: Action = "scale-up" if desired > current else "scale-down" if desired < current else "hold"
        if action != "hold":
            st = replace(st, last_scale_time=now)
        return Decision(desired, action, reason, available, bool(limited_reason), st, limited_reason,
                        raw, details or {})

    # 1. Metrics gate.
    missing = ""
    if obs.stale:
        missing = f"metrics stale ({obs.stale_reason})" if obs.stale_reason else "metrics stale"
    elif obs.waiting is None:
        missing = ("no ready pod reports metrics yet" if ready == 0
                   else "no vllm:num_requests_waiting series for this deployment")
    elif ready > 0 and obs.pods_reporting == 0:
        missing = f"none of {ready} ready pods report metrics"
    if missing:
        reason = f"hold: {missing}" + (f"; clamped {bounds}" if clamped != current else f" at {current}")
        return finish(clamped, reason, False, base_state)

    # 2. Raw need.
    s, t = float(max_num_seqs), float(spec.target_queue_depth)
    # Ready pods that Prometheus has not scraped yet are new and idle: capacity on its way, like
    # starting pods. (Extrapolating the loaded pods' queue onto them overshoots every scale-up.)
    unreported = max(0, ready - obs.pods_reporting) if obs.pods_reporting else 0
    serving = ready - unreported
    coming = counted_starting + unreported
    waiting = float(obs.waiting or 0.0)
    running = None if obs.running is None else float(obs.running)
    seqs = _batch_capacity(s, obs.kv_cache_usage, running, serving, capacity)
    if seqs is None:
        load = max((running or 0.0) / s, (obs.kv_cache_usage or 0.0) * serving)
        excess = max(0.0, waiting - t * serving - (s + t) * coming)
        raw = load + coming + excess / t
    else:
        busy = running or 0.0
        queued = max(0.0, waiting - t * serving - seqs * coming)
        need = busy + queued / BACKLOG_BATCHES
        load = busy / seqs
        raw = (need + _headroom_sigmas(capacity) * math.sqrt(need)) / seqs
        s = seqs
    details = {"waiting": waiting, "running": running if running is not None else math.nan, "load": load,
               "raw": raw, "starting": float(starting), "batch": s}

    # 3. Tolerance band, clamps.
    rec = current if current > 0 and abs(raw / current - 1.0) <= spec.tolerance else math.ceil(raw - 1e-09)
    rec = _clamp(rec, spec)

    # 4. Stabilization windows and step limits.
    keep = float(max(spec.scale_up_stabilization_seconds, spec.scale_down_stabilization_seconds))
    recs = _record(state.recommendations, now, rec, keep)
    st = replace(base_state, recommendations=recs)
    up_rec = min(_window(recs, now, spec.scale_up_stabilization_seconds))
    down_rec = max(_window(recs, now, spec.scale_down_stabilization_seconds))
    desired = up_rec if current < up_rec else down_rec if current > down_rec else current
    desired = max(current - spec.max_scale_down_step, min(current + spec.max_scale_up_step, desired))

    queue_txt = f"queue {_fmt(waiting)}"
    target_txt = f"target {_fmt(t)}x{ready} ready" + (f" (+{starting} starting)" if starting else "")
    running_txt = "running ?" if running is None else f"running {_fmt(running)}/{int(s) * ready} slots"
    limited_reason = ""

    # 5. Scale-down guards.
    if desired < current:
        block = ""
        if in_grace:
            block = f"{starting} pod(s) starting"
        elif unreported:
            block = f"{unreported} ready pod(s) not in the metrics yet"
        elif running is None:
            block = "running metric missing"
        elif waiting > spec.tolerance * t * max(ready, 1):
            block = f"{queue_txt} not near zero"
        elif running > desired * s:
            block = f"running {_fmt(running)} > {desired}x{int(s)} slots"
        if block:
            desired = current
            reason = f"hold {current}: scale-down deferred, {block}"
        else:
            window = "" if rec == desired else f", highest in {spec.scale_down_stabilization_seconds}s window"
            reason = f"{queue_txt} ≤ {target_txt}, {running_txt}{window}: {current}→{desired}"
    elif desired > current:
        if unsched:
            limited_reason = f"{unsched} pod(s) Pending unschedulable (no free GPU?)"
            reason = f"{queue_txt} > {target_txt} but {limited_reason}: hold {current}"
            desired = current
        else:
            step = f" (step limit {spec.max_scale_up_step})" if desired < up_rec else ""
            reason = f"{queue_txt} > {target_txt}, {running_txt}: {current}→{desired}{step}"
    else:
        if rec < current:
            reason = (f"{queue_txt}, {running_txt}: wants {rec}, holding {current} for the "
                      f"{spec.scale_down_stabilization_seconds}s scale-down window")
        elif rec > current:
            reason = f"{queue_txt}, {running_txt}: wants {rec}, waiting for the scale-up window"
        else:
            reason = f"{queue_txt} ~ {target_txt}, {running_txt}: steady at {current}"

    if clamped != current and desired == current:
        desired = clamped
        reason = f"clamped {bounds}"
    desired = _clamp(desired, spec)
    if not limited_reason and desired >= spec.max_replicas and raw > spec.max_replicas:
        limited_reason = f"at maxReplicas {spec.max_replicas} (wants {_fmt(raw)})"
    if unsched and not limited_reason:
        limited_reason = f"{unsched} pod(s) Pending unschedulable (no free GPU?)"
    return finish(desired, reason, True, st, limited_reason, raw, details)
