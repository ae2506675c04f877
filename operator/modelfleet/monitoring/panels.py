"""The dashboard's content as plain data: rows of panels, each a list of PromQL queries.

Pure: :func:`layout` returns the same panels for Grafana (``dashboard.py``, with Grafana's
``$namespace``/``$deployment``/``$__rate_interval``), for the e2e check that runs every query against
a real Prometheus, and for the PNG rendered from e2e data — :class:`Scope` fills the placeholders.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelfleet.monitoring import names as n


@dataclass(frozen=True)
class Scope:
    """What the queries select: namespace and LLMDeployment regexes, the rate window, the operator's job."""

    namespace: str = "$namespace"
    deployment: str = "$deployment"
    rate: str = "$__rate_interval"
    operator_job: str = n.OPERATOR_JOB

    def vllm(self, extra: str = "") -> str:
        """Matchers for one LLMDeployment's vLLM series."""
        return "{" + f'{n.NAMESPACE}=~"{self.namespace}",{n.POD_LLM}=~"{self.deployment}"{extra}' + "}"

    def fleet_vllm(self) -> str:
        """Matchers for every LLMDeployment's vLLM series in the selected namespaces."""
        return "{" + f'{n.NAMESPACE}=~"{self.namespace}",{n.POD_LLM}!=""' + "}"

    def llm(self, extra: str = "") -> str:
        """Matchers for one LLMDeployment's series on the operator's /metrics."""
        return "{" + f'{n.NAMESPACE}=~"{self.namespace}",{n.LLM}=~"{self.deployment}"{extra}' + "}"

    def fleet_llm(self) -> str:
        """Matchers for every LLMDeployment's series on the operator's /metrics."""
        return "{" + f'{n.NAMESPACE}=~"{self.namespace}"' + "}"

    def operator(self, extra: str = "") -> str:
        """Matchers for the operator's own series."""
        return "{" + f'job="{self.operator_job}"{extra}' + "}"

    def ksm_llm(self) -> str:
        """Matchers for kube_pod_labels of one LLMDeployment's pods."""
        return "{" + f'{n.NAMESPACE}=~"{self.namespace}",{n.KSM_POD_LLM}=~"{self.deployment}"' + "}"


@dataclass(frozen=True)
class Query:
    """One PromQL expression and its legend (Grafana's ``{{label}}`` syntax)."""

    expr: str
    legend: str
    source: str = "vllm"  # vllm | operator | kube-state-metrics: who exports the series it reads
    right_axis: bool = False  # another unit or scale than the panel's other queries


@dataclass(frozen=True)
class Panel:
    """One time-series panel."""

    title: str
    description: str
    unit: str  # a Grafana unit id: short, percentunit, s, reqps, ...
    queries: tuple[Query, ...]
    thresholds: tuple[float, ...] = ()  # drawn as dashed lines (alert levels)
    width: int = 12


@dataclass(frozen=True)
class Row:
    """A titled group of panels."""

    title: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


def by_llm(expr: str) -> str:
    """Copy a vLLM series' ``modelfleet_io_deployment`` into ``name``, so it joins the operator's series."""
    return f'label_replace({expr}, "{n.LLM}", "$1", "{n.POD_LLM}", "(.+)")'


def quantile(q: float, metric: str, sel: str, rate: str, by: str = "") -> str:
    """``histogram_quantile`` over a vLLM histogram, summed over pods (and ``by`` labels)."""
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({metric}_bucket{sel}[{rate}])))"


def queue_target(s: Scope) -> str:
    """Waiting requests the autoscaler aims for: targetQueueDepth per ready replica."""
    return f"{n.LLM_TARGET_QUEUE}{s.llm()} * on({n.NAMESPACE}, {n.LLM}) {n.LLM_READY_REPLICAS}{s.llm()}"


def fleet_rows(s: Scope) -> Row:
    """Every LLMDeployment in the selected namespaces, one line each."""
    v, o, by = s.fleet_vllm(), s.fleet_llm(), f"{n.NAMESPACE}, {n.POD_LLM}"
    return Row("Fleet (every LLMDeployment in $namespace)", (
        Panel("Waiting requests", "vllm:num_requests_waiting summed over each LLMDeployment's pods.", "short", (
            Query(f"sum by ({by}) ({n.VLLM_WAITING}{v})", "{{namespace}}/{{modelfleet_io_deployment}}"),
        ), width=8),
        Panel("Ready replicas", "status.readyReplicas of each LLMDeployment.", "short", (
            Query(f"{n.LLM_READY_REPLICAS}{o}", "{{namespace}}/{{name}}", "operator"),
        ), width=8),
        Panel("KV-cache usage (fullest pod)", "The highest vllm:kv_cache_usage_perc among each LLMDeployment's "
              "pods; 100 % means new requests wait or running ones are preempted.", "percentunit", (
            Query(f"max by ({by}) ({n.VLLM_KV_USAGE}{v})", "{{namespace}}/{{modelfleet_io_deployment}}"),
        ), thresholds=(0.9,), width=8),
        Panel("TTFT p95", "95th percentile time to first token over the rate window.", "s", (
            Query(quantile(0.95, n.VLLM_TTFT, v, s.rate, by), "{{namespace}}/{{modelfleet_io_deployment}}"),
        ), width=8),
        Panel("Generated tokens per second", "rate(vllm:generation_tokens_total) per LLMDeployment.", "short", (
            Query(f"sum by ({by}) (rate({n.VLLM_GENERATION_TOKENS}{v}[{s.rate}]))",
                  "{{namespace}}/{{modelfleet_io_deployment}}"),
        ), width=8),
        Panel("Scale operations", "Scale-ups and scale-downs the autoscaler made over the rate window.", "short", (
            Query(f"sum by ({n.NAMESPACE}, {n.LLM}, direction) "
                  f"(increase({n.AUTOSCALER_SCALES}{o}[{s.rate}]))", "{{namespace}}/{{name}} {{direction}}",
                  "operator"),
        ), width=8),
    ))


def deployment_rows(s: Scope) -> Row:
    """One LLMDeployment ($deployment): load against targets and capacity, latency, replicas, trouble."""
    v, o = s.vllm(), s.llm()
    on = f"on({n.NAMESPACE}, {n.LLM})"
    return Row("LLMDeployment $deployment", (
        Panel("Requests: running and waiting against target and capacity",
              "Waiting requests against the autoscaler's target (targetQueueDepth x ready replicas); running "
              "requests against vLLM's --max-num-seqs and the planner's concurrent sequences at maxModelLen, "
              "both x ready replicas.", "short", (
                  Query(f"sum({n.VLLM_RUNNING}{v})", "running"),
                  Query(f"sum({n.VLLM_WAITING}{v})", "waiting"),
                  Query(f"sum({queue_target(s)})", "autoscaler target (waiting)", "operator"),
                  Query(f"sum({n.LLM_MAX_NUM_SEQS}{o} * {on} {n.LLM_READY_REPLICAS}{o})",
                        "max running (--max-num-seqs x ready)", "operator"),
                  Query(f"sum({n.LLM_PLANNED_SEQS}{o} * {on} {n.LLM_READY_REPLICAS}{o})",
                        "planner: sequences at maxModelLen x ready (right axis)", "operator", right_axis=True),
              )),
        Panel("KV-cache usage per pod", "vllm:kv_cache_usage_perc of each pod against the KV capacity vLLM "
              "allocated (100 %); the dashed line at 90 % is the alert level.", "percentunit", (
                  Query(f"{n.VLLM_KV_USAGE}{v}", "{{pod}}"),
              ), thresholds=(0.9, 1.0)),
        Panel("Time to first token", "p50/p95/p99 of vllm:time_to_first_token_seconds over all pods.", "s", tuple(
            Query(quantile(q, n.VLLM_TTFT, v, s.rate), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)
        )),
        Panel("Inter-token latency", "p50/p95/p99 of vllm:inter_token_latency_seconds over all pods.", "s", tuple(
            Query(quantile(q, n.VLLM_ITL, v, s.rate), f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)
        )),
        Panel("Tokens per second", "Prompt (prefill) and generated tokens per second, all pods.", "short", (
            Query(f"sum(rate({n.VLLM_PROMPT_TOKENS}{v}[{s.rate}]))", "prompt"),
            Query(f"sum(rate({n.VLLM_GENERATION_TOKENS}{v}[{s.rate}]))", "generated"),
        )),
        Panel("Replicas", "Desired (status.desiredReplicas), ready, what the autoscaler wants now, and the "
              "autoscaling bounds. Scale operations are annotations.", "short", (
                  Query(f"{n.LLM_DESIRED_REPLICAS}{o}", "desired", "operator"),
                  Query(f"{n.LLM_READY_REPLICAS}{o}", "ready", "operator"),
                  Query(f"{n.AUTOSCALER_DESIRED}{o}", "autoscaler wants", "operator"),
                  Query(f"{n.LLM_MAX_REPLICAS}{o}", "maxReplicas", "operator"),
                  Query(f"{n.LLM_MIN_REPLICAS}{o}", "minReplicas", "operator"),
              )),
        Panel("Requests finished per second", "vllm:request_success_total by finished_reason (stop, length, "
              "abort, error, repetition).", "reqps", (
                  Query(f"sum by (finished_reason) (rate({n.VLLM_REQUEST_SUCCESS}{v}[{s.rate}]))",
                        "{{finished_reason}}"),
              ), width=8),
        Panel("Preemptions per second", "vllm:num_preemptions_total per pod: requests evicted from the KV cache "
              "to make room; they recompute later.", "short", (
                  Query(f"rate({n.VLLM_PREEMPTIONS}{v}[{s.rate}])", "{{pod}}"),
              ), width=8),
        Panel("Pod restarts (kube-state-metrics)", "Container restarts of this LLMDeployment's pods, and the ones "
              "whose last termination was OOMKilled. Needs kube-state-metrics with "
              "--metric-labels-allowlist=pods=[modelfleet.io/deployment].", "short", (
                  Query(f"sum by (pod) (increase({n.KSM_RESTARTS}[{s.rate}]) * on({n.NAMESPACE}, pod) "
                        f"group_left() max by ({n.NAMESPACE}, pod) ({n.KSM_POD_LABELS}{s.ksm_llm()}))",
                        "{{pod}} restarts", "kube-state-metrics"),
                  Query(f"sum by (pod) ({n.KSM_LAST_TERMINATED}{{reason=\"OOMKilled\"}} * on({n.NAMESPACE}, pod) "
                        f"group_left() max by ({n.NAMESPACE}, pod) ({n.KSM_POD_LABELS}{s.ksm_llm()}))",
                        "{{pod}} last terminated OOMKilled", "kube-state-metrics"),
              ), width=8),
    ))


def operator_rows(s: Scope) -> Row:
    """The operator's own health."""
    op = s.operator()
    rounds = f"sum by (loop) (rate({n.LOOP_ROUNDS}{op}[{s.rate}]))"
    return Row("Operator", (
        Panel("Operator up and leader", "1 while Prometheus scrapes each operator replica; leader 1 on the one "
              "holding the Lease (a standby runs no loops).", "short", (
                  Query(f"up{op}", "{{instance}} up", "operator"),
                  Query(f"{n.LEADER}{op}", "{{instance}} leader", "operator"),
              ), width=6),
        Panel("Reconciles per second", "By outcome; `error` is a reconcile that raised (kopf retries it).",
              "short", (
                  Query(f"sum by (outcome) (rate({n.RECONCILES}{op}[{s.rate}]))", "{{outcome}}", "operator"),
              ), width=6),
        Panel("Loop rounds and errors per minute", "Rounds each background loop finished, and rounds that "
              "raised (0 when a loop never failed); a flat zero of rounds is a stalled loop.", "short", (
                  Query(f"{rounds} * 60", "{{loop}} rounds", "operator"),
                  Query(f"(sum by (loop) (rate({n.LOOP_ERRORS}{op}[{s.rate}])) or {rounds} * 0) * 60",
                        "{{loop}} errors", "operator"),
              ), width=6),
        Panel("Seconds since each loop's last round", "On the leader; the operator's /healthz fails when a loop "
              "is 3 intervals + 30 s behind, the alert fires after 10 minutes.", "s", (
                  Query(f"time() - {n.LOOP_LAST_ROUND}{op}", "{{loop}} ({{instance}})", "operator"),
              ), width=6),
        Panel("API latency and load", "p95 of one Kubernetes API call, of the autoscaler's Prometheus query and "
              "of a whole autoscaler cycle; Kubernetes API requests per second on the right axis.", "s", (
                  Query(f"histogram_quantile(0.95, sum by (le) (rate({n.KUBE_SECONDS}_bucket{op}[{s.rate}])))",
                        "Kubernetes API call p95", "operator"),
                  Query(f"histogram_quantile(0.95, sum by (le) (rate({n.AUTOSCALER_FETCH}_bucket{op}[{s.rate}])))",
                        "Prometheus query p95", "operator"),
                  Query(f"histogram_quantile(0.95, sum by (le) (rate({n.AUTOSCALER_CYCLE}_bucket{op}[{s.rate}])))",
                        "autoscaler cycle p95", "operator"),
                  Query(f"sum(rate({n.KUBE_REQUESTS}{op}[{s.rate}]))", "Kubernetes API requests/s (right axis)",
                        "operator", right_axis=True),
              ), width=12),
    ))


def layout(s: Scope | None = None) -> tuple[Row, ...]:
    """Every row of the dashboard."""
    s = s or Scope()
    return fleet_rows(s), deployment_rows(s), operator_rows(s)


def scale_annotation(s: Scope | None = None) -> Query:
    """Changes of the autoscaler's desired replicas for the selected LLMDeployment, as annotation events.

    The desired-replicas gauge, not the scale counter: a labelled counter appears at 1 on its first scale,
    and Prometheus' increase() does not count a series' first sample, so the first scale would not show."""
    s = s or Scope()
    return Query(f"changes({n.AUTOSCALER_DESIRED}{s.llm()}[1m]) > 0", "desired replicas changed", "operator")


def all_queries(s: Scope | None = None) -> list[tuple[str, Query]]:
    """(panel title, query) for every query of the dashboard, the annotation included."""
    out = [(p.title, q) for row in layout(s) for p in row.panels for q in p.queries]
    return [*out, ("annotation: scale operations", scale_annotation(s))]
