"""Pure status: observed children (+ the fit verdict) -> conditions, phase, counts, events.

The reconciler owns the conditions Ready, Progressing, Degraded and Fits; the autoscaler owns
MetricsAvailable and ScalingLimited. Each side keeps the other's conditions as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from modelfleet.engines.vllm.cache import parse_termination

PodState = Literal["ready", "unschedulable", "starting", "gone"]

OWNED_CONDITIONS = ("Ready", "Progressing", "Degraded", "Fits", "CacheReady")
# Container waiting reasons that will not fix themselves without a person.
STUCK_REASONS = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}


@dataclass(frozen=True)
class FitVerdict:
    """The fit check's answer in the words status needs."""

    fits: bool | None
    reason: str
    message: str
    capacity: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventSpec:
    """An Event to post about the LLMDeployment."""

    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Observed:
    """What the reconciler read back from the cluster."""

    deployment: dict[str, Any] | None
    pods: list[dict[str, Any]]
    rollout_held: bool = False  # the spec changed but the new config does not fit
    rejected: str | None = None  # the API server refused a child: its message, naming the field


def _cond(type_: str, ok: bool | None, reason: str, message: str, generation: int) -> dict[str, Any]:
    status = "Unknown" if ok is None else ("True" if ok else "False")
    return {"type": type_, "status": status, "reason": reason, "message": message, "observedGeneration": generation}


def classify_pod(pod: dict[str, Any]) -> PodState:
    """ready | unschedulable (Pending, no node fits) | starting (anything else not ready) | gone (ending)."""
    meta, st = pod.get("metadata", {}), pod.get("status") or {}
    if meta.get("deletionTimestamp") or st.get("phase") in ("Succeeded", "Failed"):
        return "gone"
    conditions = {c.get("type"): c for c in st.get("conditions") or []}
    if conditions.get("Ready", {}).get("status") == "True":
        return "ready"
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return "unschedulable"
    return "starting"


def replica_phases(pods: list[dict[str, Any]], ready: int, downloads_in_pod: bool) -> dict[str, int]:
    """Replicas by start-up phase: serving (ready), loading (running, weights already local: the shared cache,
    a PVC, object storage streamed), downloadingOrLoading (running, fetching hf:// itself: from outside the
    pod the download and the load cannot be told apart), pending (not running yet). No pods listed (all
    ready): `ready` serving."""
    phases = {"serving": 0, "loading": 0, "downloadingOrLoading": 0, "pending": 0}
    if not pods:
        phases["serving"] = ready
        return phases
    for pod in pods:
        state = classify_pod(pod)
        if state == "ready":
            phases["serving"] += 1
        elif state == "starting" and (pod.get("status") or {}).get("phase") == "Running":
            phases["downloadingOrLoading" if downloads_in_pod else "loading"] += 1
        elif state != "gone":
            phases["pending"] += 1
    return phases


@dataclass(frozen=True)
class CreateFailure:
    """The ReplicaSet cannot create pods (quota, PodSecurity, a missing ServiceAccount...), in the API's words."""

    reason: str
    message: str
    since: str | None  # when it started failing (RFC 3339), for ageing the pods that never came


def create_failure(deployment: dict[str, Any] | None) -> CreateFailure | None:
    """The Deployment's ReplicaFailure=True condition (the controller copies its ReplicaSet's FailedCreate)."""
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return CreateFailure(
                str(cond.get("reason") or "FailedCreate"),
                str(cond.get("message") or "the ReplicaSet could not create pods"),
                cond.get("lastTransitionTime") or cond.get("lastUpdateTime"),
            )
    return None


def missing_pods(deployment: dict[str, Any] | None, pods: list[dict[str, Any]]) -> int:
    """Replicas the Deployment wants that have no pod at all (never created)."""
    want = int(((deployment or {}).get("spec") or {}).get("replicas") or 0)
    return max(0, want - sum(1 for p in pods if classify_pod(p) != "gone"))


def pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The first reason a pod cannot serve that needs a person: unschedulable or stuck container."""
    for pod in pods:
        name = pod.get("metadata", {}).get("name", "?")
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                message = cond.get("message") or "the scheduler found no node"
                reason = "InsufficientGPUs" if "nvidia.com/gpu" in message else "Unschedulable"
                return reason, f"pod {name} cannot be scheduled: {message}"
        for cs in status.get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_REASONS:
                detail = waiting.get("message") or ""
                return waiting["reason"], f"pod {name}: {waiting['reason']} {detail}".strip()
    return None


@dataclass(frozen=True)
class CacheObserved:
    """What the reconciler read about an LLMDeployment's model cache (or why it planned none)."""

    claim: str
    pvc: dict[str, Any] | None
    job: dict[str, Any] | None
    pods: list[dict[str, Any]] = field(default_factory=list)  # the download Job's pods
    expected_bytes: int | None = None
    storage_class_error: str | None = None  # the API's words when the StorageClass is missing
    refusal: tuple[str, str] | None = None  # (reason, message): the spec cannot have this cache


@dataclass(frozen=True)
class CacheState:
    """The cache's phase (Pending, Downloading, Ready, Failed) with the reason and numbers for status."""

    phase: str
    reason: str
    message: str
    bytes_done: int | None = None
    last_error: str | None = None

    @property
    def ready(self) -> bool:
        """Replicas may start."""
        return self.phase == "Ready"


# CacheReady reasons that need a person: a Warning Event when they appear.
CACHE_FAILURES = ("DownloadFailed", "DownloadRetrying", "CacheTooSmall", "CacheUnsupportedURI", "StorageClassNotFound")


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        done = (cs.get("state") or {}).get("terminated")
        if done:
            return dict(done)
    return {}


def download_error(pods: list[dict[str, Any]]) -> str | None:
    """The newest failed download pod's reason and message (its log tail, FallbackToLogsOnError)."""
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    if not failed:
        return None
    last = max(failed, key=lambda p: str(_terminated(p).get("finishedAt") or p["metadata"].get("creationTimestamp")))
    done = _terminated(last)
    words = " ".join(str(done.get(k) or "").strip() for k in ("reason", "message")).strip()
    code = f"exit code {done['exitCode']}" if done.get("exitCode") is not None else ""
    detail = ": ".join(x for x in (code, words) if x) or (last.get("status") or {}).get("message") or "failed"
    return f"pod {last['metadata']['name']}: {detail}"[:1000]


def _job_condition(job: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return dict(cond)
    return None


def cache_state(obs: CacheObserved) -> CacheState:
    """Classify a cache from its PVC, Job and download pods."""
    if obs.refusal is not None:
        return CacheState("Failed", obs.refusal[0], obs.refusal[1])
    last_error = download_error(obs.pods)
    if obs.job is not None and _job_condition(obs.job, "Complete"):
        done = [parse_termination(str(_terminated(p).get("message") or "")) for p in obs.pods]
        got = next((d for d in done if d is not None), None)
        return CacheState("Ready", "Downloaded", f"the model is in PVC {obs.claim}; replicas mount it read-only", got)
    if obs.job is not None and (failed := _job_condition(obs.job, "Failed")):
        why = f"{failed.get('reason', 'Failed')}: {failed.get('message', '')}".strip(": ")
        message = f"download Job {obs.claim} failed ({why}); last error: {last_error or 'unknown'}. Fix the cause " \
            f"(token, repo id, revision, quota) and delete the Job to retry: kubectl delete job {obs.claim}"
        return CacheState("Failed", "DownloadFailed", message, None, last_error)
    if obs.storage_class_error is not None:
        message = f"{obs.storage_class_error}: create it, or set spec.model.cache.storageClassName (or the chart's " \
            "cache.storageClassName) to a class that exists"
        return CacheState("Pending", "StorageClassNotFound", message)
    if obs.pvc is None or obs.job is None:
        return CacheState("Pending", "Creating", f"creating PVC and download Job {obs.claim}")
    pvc_phase = (obs.pvc.get("status") or {}).get("phase") or "Pending"
    if pvc_phase != "Bound":
        return CacheState("Pending", "VolumePending", f"PVC {obs.claim} is {pvc_phase}: no volume bound yet "
                          f"(kubectl describe pvc {obs.claim} shows the provisioner's message)", None, last_error)
    running = [p for p in obs.pods if (p.get("status") or {}).get("phase") == "Running"]
    if running:
        return CacheState("Downloading", "Downloading", f"pod {running[0]['metadata']['name']} is downloading the "
                          "model", None, last_error)
    if last_error is not None:
        return CacheState("Downloading", "DownloadRetrying", f"the download failed and the Job retries with back-off: "
                          f"{last_error}", None, last_error)
    return CacheState("Pending", "DownloadPending", f"waiting for the download pod of Job {obs.claim} to start")


def cache_fields(obs: CacheObserved, state: CacheState) -> dict[str, Any]:
    """status.cache."""
    out = {"claim": obs.claim or None, "phase": state.phase, "bytesDone": state.bytes_done,
           "bytesTotal": obs.expected_bytes, "lastError": state.last_error}
    return {k: v for k, v in out.items() if v is not None}


def _rollout(deployment: dict[str, Any]) -> tuple[bool, str, str]:
    """(in progress, reason, message) from a Deployment's status."""
    spec_replicas = deployment.get("spec", {}).get("replicas", 1)
    status = deployment.get("status") or {}
    generation = deployment.get("metadata", {}).get("generation", 0)
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return False, "ProgressDeadlineExceeded", cond.get("message", "")
    if status.get("observedGeneration", 0) < generation:
        return True, "RollingOut", "the Deployment controller has not seen the new spec yet"
    updated = status.get("updatedReplicas", 0)
    available = status.get("availableReplicas", 0)
    total = status.get("replicas", 0)
    if updated < spec_replicas or total > updated or available < spec_replicas:
        return True, "RollingOut", f"{updated}/{spec_replicas} updated, {available} available"
    return False, "RolloutComplete", f"{available}/{spec_replicas} replicas available"


def compute(
    generation: int,
    endpoint: str,
    selector: str,
    desired: int,
    fit: FitVerdict,
    observed: Observed,
    cache: CacheState | None = None,
    downloads_in_pod: bool = False,
) -> dict[str, Any]:
    """The status fields the reconciler owns, with its four conditions (five with a model cache)."""
    dep = observed.deployment
    waiting = cache is not None and not cache.ready
    dep_status = (dep or {}).get("status") or {}
    ready = int(dep_status.get("readyReplicas", 0))
    replicas = int(dep_status.get("replicas", 0))
    conditions = [_cond("Fits", fit.fits, fit.reason, fit.message, generation)]
    problem = pod_problem(observed.pods)

    if waiting and cache is not None and cache.phase == "Failed":
        progressing = _cond("Progressing", False, "CacheFailed", f"replicas wait for the model cache: {cache.message}",
                            generation)
    elif waiting and cache is not None:
        what = "replicas start" if dep is None else "the new spec rolls out"
        progressing = _cond("Progressing", True, "WaitingForCache",
                            f"{what} when the model cache is Ready (now {cache.phase}: {cache.message})", generation)
    elif dep is None:
        progressing = _cond(
            "Progressing",
            fit.fits is not False,
            "Creating" if fit.fits is not False else "FitCheckFailed",
            "creating the vLLM Deployment" if fit.fits is not False else "nothing rolled out: the model does not fit",
            generation,
        )
    elif observed.rollout_held:
        progressing = _cond(
            "Progressing",
            False,
            "RolloutHeld",
            "the new spec does not fit; the running replicas keep the previous spec",
            generation,
        )
    else:
        moving, reason, message = _rollout(dep)
        progressing = _cond("Progressing", moving, reason, message, generation)
    conditions.append(progressing)

    failure = create_failure(dep)
    if observed.rejected is not None:
        degraded = _cond("Degraded", True, "ChildRejected", observed.rejected, generation)
    elif failure is not None:
        message = f"pods cannot be created: {failure.message}"
        if "PodSecurity" in failure.message:
            message += "; set spec.podSecurity: restricted to run the pods as a non-root UID"
        degraded = _cond("Degraded", True, failure.reason, message, generation)
    elif problem is not None:
        degraded = _cond("Degraded", True, problem[0], problem[1], generation)
    elif progressing["reason"] == "ProgressDeadlineExceeded":
        degraded = _cond("Degraded", True, "ProgressDeadlineExceeded", progressing["message"], generation)
    elif fit.fits is False:
        degraded = _cond("Degraded", True, "DoesNotFit", fit.message, generation)
    elif cache is not None and cache.phase == "Failed":
        degraded = _cond("Degraded", True, "CacheFailed", cache.message, generation)
    else:
        degraded = _cond("Degraded", False, "AsExpected", "no problems seen", generation)
    conditions.append(degraded)

    if desired == 0:
        ready_cond = _cond("Ready", False, "ScaledToZero", "replicas is 0", generation)
    elif ready >= 1:
        ready_cond = _cond("Ready", True, "ReplicasReady", f"{ready}/{desired} replicas ready", generation)
    else:
        ready_cond = _cond("Ready", False, "NoReplicaReady", f"0/{desired} replicas ready", generation)
    conditions.append(ready_cond)

    if fit.fits is False and dep is None:
        phase = "DoesNotFit"
    elif degraded["status"] == "True":
        phase = "Degraded"
    elif ready >= desired and progressing["status"] == "False" and ready_cond["status"] == "True":
        phase = "Ready"
    elif desired == 0:
        phase = "ScaledToZero"
    else:
        phase = "Progressing"

    out: dict[str, Any] = {
        "observedGeneration": generation,
        "phase": phase,
        "conditions": conditions,
        "replicas": replicas,
        "readyReplicas": ready,
        "desiredReplicas": desired,
        "replicaPhases": replica_phases(observed.pods, ready, downloads_in_pod),
        "endpoint": endpoint,
        "selector": selector,
    }
    if fit.capacity:
        out["capacity"] = fit.capacity
    if cache is not None:
        ok = cache.ready
        conditions.append(_cond("CacheReady", ok, cache.reason, cache.message, generation))
    return out


def merge_conditions(previous: list[dict[str, Any]], new: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """New conditions replace old ones of the same type; lastTransitionTime moves only on a flip."""
    old = {str(c.get("type")): c for c in previous}
    merged: dict[str, dict[str, Any]] = dict(old)
    for cond in new:
        before = old.get(cond["type"])
        stamp = before.get("lastTransitionTime") if before and before.get("status") == cond["status"] else now
        merged[cond["type"]] = {**cond, "lastTransitionTime": stamp}
    return ordered(list(merged.values()))


#: The one order of conditions in status: both writers (reconciler, autoscaler) keep it, so neither
#: sees the other's list as changed and rewrites it only to reorder it.
CONDITION_ORDER = ("Ready", "Progressing", "Degraded", "Fits", "CacheReady", "ScalingLimited", "MetricsAvailable")


def ordered(conditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Conditions sorted into CONDITION_ORDER (unknown types last, in their given order)."""
    rank = {t: i for i, t in enumerate(CONDITION_ORDER)}
    return sorted(conditions, key=lambda c: rank.get(str(c.get("type")), len(rank)))


def diff(previous: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The top-level status fields whose value differs; empty when nothing needs writing."""
    return {k: v for k, v in wanted.items() if previous.get(k) != v}


def transition_events(previous: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[EventSpec]:
    """Events for conditions that flipped or changed reason (never for a repeat)."""
    old = {c.get("type"): c for c in previous}
    events: list[EventSpec] = []
    for cond in new:
        before = old.get(cond["type"])
        if before and before.get("status") == cond["status"] and before.get("reason") == cond["reason"]:
            continue
        kind, status = cond["type"], cond["status"]
        if kind == "Ready" and status == "True":
            events.append(EventSpec("Normal", "Ready", cond["message"]))
        elif kind == "CacheReady":
            events += _cache_event(cond)
        elif kind == "Degraded" and status == "True" and cond["reason"] not in ("DoesNotFit", "CacheFailed"):
            # Fits and CacheReady say those once
            events.append(EventSpec("Warning", cond["reason"], cond["message"]))
        elif kind == "Fits" and status == "False":
            events.append(EventSpec("Warning", "DoesNotFit", cond["message"]))
        elif kind == "Fits" and status == "Unknown":
            events.append(EventSpec("Normal", cond["reason"], cond["message"]))
        elif kind == "Degraded" and status == "False" and before is not None:
            events.append(EventSpec("Normal", "Recovered", cond["message"]))
    return events


def _cache_event(cond: dict[str, Any]) -> list[EventSpec]:
    """Events of a CacheReady change: download started, completed, failed (with the reason)."""
    if cond["status"] == "True":
        return [EventSpec("Normal", "CacheReady", cond["message"])]
    if cond["reason"] in CACHE_FAILURES:
        return [EventSpec("Warning", cond["reason"], cond["message"])]
    if cond["reason"] == "Downloading":
        return [EventSpec("Normal", "DownloadStarted", cond["message"])]
    return []
