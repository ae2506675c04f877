"""The autoscaler inside the operator: registry -> targets -> one `run_cycle` every interval -> kube.

`targets` is pure; `KubeActuator` turns decisions into the operator's few writes; `Autoscaler.cycle`
is the round the supervised "autoscaler" loop of `modelfleet run` runs every interval.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from modelfleet import api
from modelfleet.autoscaler.loop import Target, run_cycle
from modelfleet.autoscaler.metrics import MetricsSource, PrometheusSource, ScrapeSource, scoped_selector
from modelfleet.kube import Kube, KubeError
from modelfleet.registry import LLM, Registry, View
from modelfleet.status import classify_pod, create_failure, missing_pods, ordered

if TYPE_CHECKING:
    from modelfleet.runtime import Runtime

log = logging.getLogger(__name__)
AUTOSCALER_CONDITIONS = ("MetricsAvailable", "ScalingLimited")


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _startup_seconds(pods: Sequence[dict[str, Any]]) -> float | None:
    """Median creation-to-Ready time of the ready pods (their Ready condition's transition time)."""
    took = []
    for pod in pods:
        created = _parse_time(pod.get("metadata", {}).get("creationTimestamp"))
        ready = next((c for c in (pod.get("status") or {}).get("conditions") or []
                      if c.get("type") == "Ready" and c.get("status") == "True"), None)
        since = _parse_time(ready.get("lastTransitionTime")) if ready else None
        if created is not None and since is not None and since >= created:
            took.append(since - created)
    return statistics.median(took) if took else None


def target_for(view: View, now: float) -> Target | None:
    """The autoscaler's view of one LLMDeployment, or None when it is not autoscaled (or not yet deployed)."""
    try:
        llm = api.LLMDeployment.model_validate(view.llm)
    except ValidationError:
        return None
    if not llm.spec.autoscaling.enabled or view.deployment is None:
        return None
    dep_spec, dep_status = view.deployment.get("spec") or {}, view.deployment.get("status") or {}
    # Only pods our own ReplicaSets made: a look-alike pod with the label must not feed the decision.
    states = [(pod, classify_pod(pod)) for pod in view.owned_pods()]
    starting = [_parse_time(p["metadata"].get("creationTimestamp")) for p, s in states if s == "starting"]
    # Pods the ReplicaSet cannot create (quota, PodSecurity...) never get a creation time: they age
    # from when creating started to fail, like unready pods, and block scale-ups like unschedulable ones.
    failure = create_failure(view.deployment)
    not_created = missing_pods(view.deployment, view.owned_pods()) if failure else 0
    if not_created and failure is not None:
        starting.append(_parse_time(failure.since))
    ages = [now - t for t in starting if t is not None]
    status = view.llm.get("status") or {}
    return Target(
        namespace=llm.namespace,
        name=llm.name,
        spec=llm.spec.autoscaling,
        max_num_seqs=llm.spec.engine.max_num_seqs,
        replicas=int(dep_spec.get("replicas", 0)),
        ready_replicas=int(dep_status.get("readyReplicas", 0)),
        unschedulable=sum(1 for _, s in states if s == "unschedulable"),
        not_created=not_created,
        not_created_reason=f"{failure.reason}: {failure.message}" if failure and not_created else "",
        unready_seconds=max(ages) if ages else None,
        autoscaler_status=status.get("autoscaler"),
        conditions=status.get("conditions") or [],
        pod_urls={
            p["metadata"]["name"]: f"http://{p['status']['podIP']}:{api.VLLM_PORT}/metrics"
            for p, s in states
            if s == "ready" and (p.get("status") or {}).get("podIP")
        },
        kv_cache_tokens=(status.get("capacity") or {}).get("kvCacheTokens"),
        startup_seconds=_startup_seconds([p for p, s in states if s == "ready"]),
    )


def targets(views: Sequence[View], now: float) -> list[Target]:
    """Targets for every autoscaled LLMDeployment in the registry."""
    return [t for t in (target_for(v, now) for v in views) if t is not None]


def merge_conditions(current: Sequence[dict[str, Any]], ours: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored conditions with the autoscaler's two replaced by type (the reconciler's left as they are),
    in status.py's order: the reconciler must not see a merely reordered list as a change to write."""
    mine = {c["type"]: dict(c) for c in ours if c.get("type") in AUTOSCALER_CONDITIONS}
    kept = [dict(c) for c in current if c.get("type") not in mine]
    return ordered(kept + list(mine.values()))


#: Attempts of one status write that meets a conflict (each on a freshly read body).
STATUS_WRITE_ATTEMPTS = 3
#: How long the autoscaler waits for a reconcile of the same object to finish before writing anyway.
LOCK_WAIT_SECONDS = 2.0

ObjectLock = Callable[[str, str, float], AbstractContextManager[None]]


@contextmanager
def _no_lock(namespace: str, name: str, wait: float) -> Iterator[None]:
    yield


class KubeActuator:
    """Carries the loop's decisions to the API server, off the event loop.

    Every status write is recorded in the registry (the reconciler's watch cache) as the API returned it,
    and is made under the object's reconcile lock (`lock`: sync.turn in the operator): the reconciler and
    the autoscaler then take turns on one current body instead of racing each other into 409s, which under
    load could drop a scale decision's status write (and its stabilization recommendation) altogether.
    """

    def __init__(self, kube: Kube, registry: Registry, lock: ObjectLock = _no_lock) -> None:
        self.kube = kube
        self.registry = registry
        self.lock = lock

    def _body(self, namespace: str, name: str) -> dict[str, Any]:
        body = self.registry.get_llm(namespace, name)
        if body is None:
            raise KubeError(f"{namespace}/{name} is no longer known", None, retryable=False)
        return body

    def _patch(self, namespace: str, name: str, patch: dict[str, Any], resource_version: str | None) -> None:
        written = self.kube.patch_status(namespace, name, patch, resource_version)
        if isinstance(written, dict) and written.get("metadata"):
            self.registry.record(LLM, written)

    def _patch_desired(self, namespace: str, name: str, replicas: int) -> None:
        with self.lock(namespace, name, LOCK_WAIT_SECONDS):
            self._patch(namespace, name, {"desiredReplicas": replicas}, None)

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        """status.desiredReplicas first (the reconciler reads it), then the Deployment's scale."""
        await asyncio.to_thread(self._patch_desired, namespace, name, replicas)
        await asyncio.to_thread(self.kube.scale, namespace, name, replicas)

    async def write_status(
        self,
        namespace: str,
        name: str,
        autoscaler: dict[str, Any],
        desired_replicas: int,
        conditions: list[dict[str, Any]],
    ) -> None:
        """Write status.autoscaler, desiredReplicas and our conditions, merged into the stored conditions.

        The write carries the resourceVersion the conditions were merged from, so a concurrent write is
        never clobbered; on a conflict (a writer outside this process, e.g. kopf's annotations) it merges
        again into a freshly read body, at most STATUS_WRITE_ATTEMPTS times in all.
        """
        await asyncio.to_thread(self._write_status, namespace, name, autoscaler, desired_replicas, conditions)

    def _write_status(
        self, namespace: str, name: str, autoscaler: dict[str, Any], desired_replicas: int,
        conditions: list[dict[str, Any]],
    ) -> None:
        with self.lock(namespace, name, LOCK_WAIT_SECONDS):
            self._write_fresh(namespace, name, autoscaler, desired_replicas, conditions)

    def _write_fresh(
        self, namespace: str, name: str, autoscaler: dict[str, Any], desired_replicas: int,
        conditions: list[dict[str, Any]],
    ) -> None:
        body = self._body(namespace, name)
        for attempt in range(1, STATUS_WRITE_ATTEMPTS + 1):
            try:
                self._write(body, autoscaler, desired_replicas, conditions)
                return
            except KubeError as exc:
                if exc.status != 409 or attempt == STATUS_WRITE_ATTEMPTS:
                    raise
                fresh = self.kube.get_llm(namespace, name)
                if fresh is None:
                    raise
                self.registry.record(LLM, fresh)
                body = fresh

    def _write(
        self, body: dict[str, Any], autoscaler: dict[str, Any], desired_replicas: int, conditions: list[dict[str, Any]]
    ) -> None:
        meta = body["metadata"]
        current = (body.get("status") or {}).get("conditions") or []
        patch = {
            "autoscaler": autoscaler,
            "desiredReplicas": desired_replicas,
            "conditions": merge_conditions(current, conditions),
        }
        self._patch(meta["namespace"], meta["name"], patch, meta.get("resourceVersion"))

    async def event(self, namespace: str, name: str, type: str, reason: str, message: str) -> None:
        """An Event on the LLMDeployment."""
        await asyncio.to_thread(self.kube.event, self._body(namespace, name), type, reason, message)

    async def set_deletion_costs(self, namespace: str, name: str, costs: dict[str, int]) -> None:
        """Idle pods get the lowest pod-deletion-cost, so a scale-down removes them first."""
        for pod, cost in costs.items():
            annotations = {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
            await asyncio.to_thread(self.kube.annotate_pod, namespace, pod, annotations)


def make_source(runtime: Runtime) -> MetricsSource:
    """Prometheus when a URL is set and the mode says so; else scraping pods directly."""
    settings = runtime.settings
    if settings.metrics_mode == "prometheus" and settings.prometheus_url:
        return PrometheusSource(settings.prometheus_url, timeout=settings.metrics_timeout_seconds, retries=1,
                                selector=scoped_selector(settings.prometheus_selector))
    if settings.metrics_mode == "prometheus":
        log.warning("metrics mode is prometheus but no MODELFLEET_PROMETHEUS_URL is set: scraping pods directly")
    return ScrapeSource(timeout=settings.metrics_timeout_seconds)


class Autoscaler:
    """The loop's state across cycles: the metrics source and the actuator, built once."""

    def __init__(self, runtime: Runtime, lock: ObjectLock = _no_lock) -> None:
        self.runtime = runtime
        self.source = make_source(runtime)
        self.actuator = KubeActuator(runtime.kube, runtime.registry, lock)

    async def cycle(self) -> None:
        """One cycle over every autoscaled LLMDeployment (supervise.py runs it every interval and
        survives whatever it raises; a failing target is logged and the others go on)."""
        now = time.time()
        batch = targets(self.runtime.registry.snapshot(), now)
        if not batch:
            return
        max_age = self.runtime.settings.stale_after_seconds
        for outcome in await run_cycle(batch, self.source, self.actuator, now, max_age=max_age):
            if outcome.error:
                log.warning("autoscaler: %s", outcome.error)
