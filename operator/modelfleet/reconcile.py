"""One LLMDeployment, level-based: fit check -> render -> apply what changed -> status.

Idempotent: when nothing changed it writes nothing, so neither status churn nor Events come from a
resync. Reads (the two children, maybe the pods) go to a Cache: the operator's watch cache (no API
call at all), or the API itself (`ApiReader`) before the watches have listed and in tools.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from modelfleet import api, cache, cachesync, drift, engines, render, startup, status
from modelfleet.fitcheck import FitOutcome, check_fit
from modelfleet.kube import Kube, KubeError

log = logging.getLogger(__name__)


class Cache(Protocol):
    """Where reconcile reads the children and pods, and tells what its writes returned."""

    def get_child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The Deployment or Service `name`, or None."""

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The pods of the LLMDeployment `name`."""

    def written(self, kind: str, obj: dict[str, Any]) -> None:
        """An object as one of our writes left it (`kind`: Deployment, Service or LLMDeployment)."""


class ApiReader:
    """A Cache that asks the API server every time (one GET per child)."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def get_child(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """GET the child."""
        return self.kube.get_child(kind, namespace, name)

    def list_pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """LIST the pods by label."""
        return self.kube.list_pods(namespace, name)

    def written(self, kind: str, obj: dict[str, Any]) -> None:
        """Nothing is kept."""


@dataclass
class Result:
    """What a reconcile did, for logs and tests."""

    applied: list[str] = field(default_factory=list)
    status_patch: dict[str, Any] = field(default_factory=dict)
    events: list[status.EventSpec] = field(default_factory=list)
    rejected: str | None = None  # the API server refused a child: why, in its words


def now_iso() -> str:
    """The current time as Kubernetes writes it."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def desired_replicas(llm: api.LLMDeployment, existing: dict[str, Any] | None) -> int:
    """spec.replicas without autoscaling; else the autoscaler's last choice, clamped to [min, max].

    Both the reconciler and the autoscaler read the same number (status.desiredReplicas), so
    they never fight over the Deployment's replicas.
    """
    spec = llm.spec
    if not spec.autoscaling.enabled:
        return spec.replicas
    auto = spec.autoscaling
    chosen = llm.status.desired_replicas if llm.status else None
    if chosen is None and existing is not None:
        chosen = existing.get("spec", {}).get("replicas")
    if chosen is None:
        chosen = auto.min_replicas
    return max(auto.min_replicas, min(auto.max_replicas, int(chosen)))


def applied_replicas(llm: api.LLMDeployment, existing: dict[str, Any] | None, desired: int) -> int:
    """The replica count the reconciler applies. Autoscaled with a Deployment in place: the Deployment's
    own count, only clamped into [min, max]. The autoscaler owns that number (scale subresource); the
    reconciler may hold a body older than the autoscaler's last decision, and re-applying its stale
    desiredReplicas would undo a scale (a scale-down the stabilization window forbade)."""
    if not llm.spec.autoscaling.enabled or existing is None:
        return desired
    auto = llm.spec.autoscaling
    live = (existing.get("spec") or {}).get("replicas")
    if live is None:
        return desired
    return max(auto.min_replicas, min(auto.max_replicas, int(live)))


def _needs_pods(deployment: dict[str, Any] | None) -> bool:
    """Pods are only worth listing when some replica is not ready (to say why)."""
    if deployment is None:
        return False
    st = deployment.get("status") or {}
    want = deployment.get("spec", {}).get("replicas", 0)
    return bool(int(st.get("readyReplicas", 0)) < want or int(st.get("replicas", 0)) > want)


def rejection_message(kind: str, name: str, exc: KubeError) -> str:
    """What a person needs when the API server refuses a child: which object, which field, its words."""
    fields = f" (field {', '.join(exc.fields)})" if exc.fields else ""
    return (
        f"the API server refused {kind} {name}{fields}: {exc.api_message}. "
        "Fix the LLMDeployment's spec (or the policy that refused it); the operator retries every resync"
    )


def _apply_children(
    kube: Kube,
    reader: Cache,
    body: dict[str, Any],
    children: list[dict[str, Any]],
    existing: dict[str, dict[str, Any] | None],
    result: Result,
) -> dict[str, Any] | None:
    """Apply each child whose owned fields differ from the live object; returns the Deployment as it now stands.

    A child the API server refuses (422 invalid, 403 forbidden by quota or admission) is reported in
    `result.rejected` instead of failing the reconcile: status and an Event must say so.
    """
    deployment = existing.get("Deployment")
    for child in children:
        kind = child["kind"]
        wanted, live = render.with_owner(child, body), existing.get(kind)
        drifted = drift.differences(wanted, live) if live is not None else ["(absent)"]
        if not drifted:
            continue
        if live is not None:
            log.info("%s %s/%s differs in %s: re-applying", kind, wanted["metadata"]["namespace"],
                     wanted["metadata"]["name"], ", ".join(drifted[:8]))
        try:
            current = kube.apply(wanted)
        except KubeError as exc:
            if exc.namespace_terminating:
                # The namespace is being deleted with the LLMDeployment in it: not a refusal to report.
                log.debug("not applying %s %s: %s", kind, wanted["metadata"]["name"], exc.api_message)
                return deployment
            if not exc.refused:
                raise
            result.rejected = rejection_message(kind, wanted["metadata"]["name"], exc)
            continue
        reader.written(kind, current)
        result.applied.append(kind)
        if _hand_edit(wanted, live, drifted):
            message = f"{kind} {wanted['metadata']['name']} was edited outside the operator; restored " + ", ".join(
                drifted[:8]
            )
            result.events.append(status.EventSpec("Normal", "RevertedDrift", message))
        else:
            verb = "Updated" if live else "Created"
            result.events.append(status.EventSpec("Normal", f"{verb}{kind}", _describe(verb, child)))
        if kind == "Deployment":
            deployment = current
    return deployment


def _hand_edit(wanted: dict[str, Any], live: dict[str, Any] | None, drifted: list[str]) -> bool:
    """The live child carries our current config hash yet differs: someone edited it (not a spec change)."""
    if live is None or drifted == ["spec.replicas"]:
        return False
    have = (live["metadata"].get("annotations") or {}).get(render.CONFIG_HASH_ANNOTATION)
    return bool(have == wanted["metadata"]["annotations"][render.CONFIG_HASH_ANNOTATION])


def _describe(verb: str, child: dict[str, Any]) -> str:
    if child["kind"] != "Deployment":
        return f"{verb} Service {child['metadata']['name']} on port {api.VLLM_PORT}"
    pod = child["spec"]["template"]["spec"]["containers"][0]
    gpus = pod["resources"]["limits"]["nvidia.com/gpu"]
    return f"{verb} Deployment {child['metadata']['name']}: {child['spec']['replicas']} replica(s) x {gpus} GPU"


def status_precondition(llm: api.LLMDeployment, body: dict[str, Any]) -> str | None:
    """The resourceVersion a status write must match, or None when no precondition is needed.

    Only the autoscaler writes status besides us, and only for autoscaled objects: there the write must
    fail (409) rather than replace conditions merged from an older status. Otherwise we are the only
    status writer and our bodies hold our own last write, so a precondition would only trip over
    writes to metadata (kopf's annotations) and cost a 409, a GET and a second patch per object.
    """
    return str(body["metadata"].get("resourceVersion") or "") or None if llm.spec.autoscaling.enabled else None


def engine_refusal(llm: api.LLMDeployment) -> FitOutcome | None:
    """A spec its engine release cannot serve holds the rollout like a model that does not fit:
    Fits=False with the field, value and release, an Event, and running replicas untouched."""
    problems = engines.spec_problems(llm.spec)
    if not problems:
        return None
    return FitOutcome(status.FitVerdict(False, "UnsupportedByEngine", "; ".join(map(str, problems))), None)


def reconcile(
    body: dict[str, Any],
    kube: Kube,
    fit: FitOutcome | None = None,
    cache_defaults: cache.CacheDefaults | None = None,
    reader: Cache | None = None,
) -> Result:
    """Bring one LLMDeployment's children and status in line with its spec (children read from `reader`:
    the watch cache, default the API)."""
    reader = reader or ApiReader(kube)
    llm = api.LLMDeployment.model_validate(body)
    defaults = cache_defaults or cache.CacheDefaults()
    fit = engine_refusal(llm) or fit or check_fit(llm)
    result = Result()
    existing: dict[str, dict[str, Any] | None] = {
        kind: reader.get_child(kind, llm.namespace, llm.name) for kind in ("Service", "Deployment")
    }
    replicas = desired_replicas(llm, existing["Deployment"])

    held = fit.verdict.fits is False
    deployment = existing["Deployment"]
    cache_obs: status.CacheObserved | None = None
    cache_state: status.CacheState | None = None
    if not held:
        weights = fit.report.weights_bytes if fit.report else None
        planned = None
        if cache.enabled(llm.spec, defaults):
            # Other users only matter to a reclaim: Delete (one Retain keeps the data); Retain lists nothing.
            wants_delete = llm.spec.model.cache.reclaim == api.CacheReclaim.DELETE
            planned = cache.plan(llm, weights, defaults, cachesync.neighbours(kube, llm) if wants_delete else [])
        if planned is not None:
            cache_obs, cache_state = cachesync.sync(kube, planned, result.applied, result.events)
        choices = render.RenderChoices(
            replicas=applied_replicas(llm, existing["Deployment"], replicas),
            max_model_len=fit.max_model_len,
            weights_bytes=weights,
            cache_claim=planned.name if isinstance(planned, cache.CachePlan) else None,
        )
        children = render.render(llm, choices)
        if cache_state is not None and not cache_state.ready:
            # Replicas start only from a complete cache; running ones keep their spec until it is.
            children = [c for c in children if c["kind"] != "Deployment"]
        deployment = _apply_children(kube, reader, body, children, existing, result)
    for event in result.events:  # what was done is said even if the status write below fails
        kube.event(body, event.type, event.reason, event.message)
    pods = reader.list_pods(llm.namespace, llm.name) if _needs_pods(deployment) else []

    observed = status.Observed(
        deployment=deployment, pods=pods, rollout_held=held and deployment is not None, rejected=result.rejected
    )
    wanted = status.compute(
        generation=int(body["metadata"].get("generation", 0)),
        endpoint=render.endpoint(llm),
        selector=api.selector_string(llm.name),
        desired=replicas,
        fit=fit.verdict,
        observed=observed,
        cache=cache_state,
        downloads_in_pod=startup.downloads_in_pod(llm.spec, cache_state is not None),
    )
    previous: dict[str, Any] = body.get("status") or {}
    prev_conditions = previous.get("conditions") or []
    if cache_obs is not None and cache_state is not None:
        wanted["cache"] = status.cache_fields(cache_obs, cache_state)
    elif not held:  # no cache (any more): its status and condition go
        prev_conditions = [c for c in prev_conditions if c.get("type") != "CacheReady"]
        if previous.get("cache") is not None:
            wanted["cache"] = None
    wanted["conditions"] = status.merge_conditions(prev_conditions, wanted["conditions"], now_iso())
    result.status_patch = status.diff(previous, wanted)
    if isinstance(result.status_patch.get("cache"), dict) and isinstance(previous.get("cache"), dict):
        # A merge patch keeps keys it does not mention: clear the ones that no longer apply (lastError).
        gone = {k: None for k in previous["cache"] if k not in result.status_patch["cache"]}
        result.status_patch["cache"] = {**result.status_patch["cache"], **gone}
    if result.status_patch:
        written = kube.patch_status(llm.namespace, llm.name, result.status_patch, status_precondition(llm, body))
        reader.written(api.KIND, written)
    transitions = status.transition_events(prev_conditions, wanted["conditions"])
    for event in transitions:
        kube.event(body, event.type, event.reason, event.message)
    result.events += transitions
    return result
