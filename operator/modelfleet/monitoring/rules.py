"""The alert rules, as plain data: a Prometheus rules file and the chart's PrometheusRule template.

Pure. :func:`alerts` builds every rule from :class:`Thresholds`; the values may be numbers (the plain
rules file, promtool tests) or Helm expressions (the chart template, where ``values.yaml`` sets them).
Each alert carries ``signal``: the expression before its threshold, which must return data wherever
the metrics exist (the e2e test runs it against a real Prometheus).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

import yaml

from modelfleet.monitoring import names as n
from modelfleet.monitoring.panels import by_llm

GROUP = "modelfleet"
DOCS_URL = "https://github.com/modelfleet/modelfleet/blob/main/docs/monitoring.md"


@dataclass(frozen=True)
class Thresholds:
    """Every tunable number of the rules; the chart's ``monitoring.rules`` values mirror these keys."""

    queue_above_target_for: str = "10m"
    kv_cache_usage: str = "0.9"
    kv_cache_for: str = "5m"
    ttft_p95_seconds: str = "2"
    ttft_for: str = "10m"
    max_preemptions: str = "0"
    preemptions_for: str = "5m"
    metrics_missing_for: str = "5m"
    operator_down_for: str = "5m"
    loop_stalled_seconds: str = "600"
    loop_stalled_for: str = "5m"
    runbook_base_url: str = DOCS_URL

    @classmethod
    def helm(cls) -> Thresholds:
        """Helm expressions reading ``.Values.monitoring.rules.<camelCase key>``."""
        return cls(**{f.name: f"{{{{ .Values.monitoring.rules.{_camel(f.name)} }}}}" for f in fields(cls)})


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(w.title() for w in rest)


def value_keys() -> dict[str, str]:
    """camelCase values key -> default, for values.yaml and its schema."""
    return {_camel(f.name): str(f.default) for f in fields(Thresholds)}


@dataclass(frozen=True)
class Alert:
    """One alerting rule."""

    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    signal: str  # the part of expr that must return data wherever its metrics exist
    source: str = "vllm"  # who exports what it reads: vllm, operator, or kube-state-metrics

    def rule(self, runbook_base_url: str) -> dict[str, object]:
        """The rule as it appears in a rules file."""
        rule: dict[str, object] = {"alert": self.name, "expr": self.expr}
        if self.for_ not in ("", "0m", "0s"):
            rule["for"] = self.for_
        rule["labels"] = {"severity": self.severity}
        rule["annotations"] = {"summary": self.summary, "description": self.description,
                               "runbook_url": f"{runbook_base_url}#{self.name.lower()}"}
        return rule


def alerts(t: Thresholds | None = None) -> list[Alert]:
    """Every alert, thresholds filled in."""
    t = t or Thresholds()
    ns, llm, dep = n.NAMESPACE, n.LLM, n.POD_LLM
    on = f"on({ns}, {llm})"
    pods = f'{{{dep}!=""}}'
    waiting = f"sum by ({ns}, {llm}) ({by_llm(n.VLLM_WAITING + pods)})"
    target = f"{n.LLM_TARGET_QUEUE} * {on} {n.LLM_READY_REPLICAS}"
    at_max = f"{n.LLM_DESIRED_REPLICAS} >= {on} {n.LLM_MAX_REPLICAS}"
    kv = f"max by ({ns}, {dep}, pod) ({n.VLLM_KV_USAGE}{pods})"
    ttft = f"histogram_quantile(0.95, sum by (le, {ns}, {dep}) (rate({n.VLLM_TTFT}_bucket{pods}[5m])))"
    preempt = f"sum by ({ns}, {dep}) (increase({n.VLLM_PREEMPTIONS}{pods}[10m]))"
    restarts = f"increase({n.KSM_RESTARTS}[15m])"
    oom = f'{n.KSM_LAST_TERMINATED}{{reason="OOMKilled"}}'
    owner = f'max by ({ns}, pod, {n.KSM_POD_LLM}) ({n.KSM_POD_LABELS}{{{n.KSM_POD_LLM}!=""}})'
    reporting = f"{by_llm(f'count by ({ns}, {dep}) ({n.VLLM_WAITING}{pods})')}"
    job = f'{{job="{n.OPERATOR_JOB}"}}'
    who = "{{ $labels.namespace }}/{{ $labels.name }}"
    who_pod = "{{ $labels.namespace }}/{{ $labels.modelfleet_io_deployment }}"
    return [
        Alert(
            "ModelfleetQueueAboveTargetAtMaxReplicas",
            f"({waiting} > {on} ({target})) and {on} ({at_max})",
            t.queue_above_target_for, "warning",
            f"{who}: queue above the autoscaler's target at maxReplicas",
            f"{{{{ $value }}}} requests wait on {who}, more than targetQueueDepth x ready replicas, and the "
            "autoscaler is already at maxReplicas: users wait. Raise maxReplicas, add GPUs, or shed load.",
            waiting,
        ),
        Alert(
            "ModelfleetKVCacheNearlyFull",
            f"{kv} > {t.kv_cache_usage}",
            t.kv_cache_for, "warning",
            f"{who_pod}: KV cache above {t.kv_cache_usage} on pod {{{{ $labels.pod }}}}",
            f"vllm:kv_cache_usage_perc is {{{{ $value | humanizePercentage }}}} on {{{{ $labels.pod }}}} of "
            f"{who_pod}: new requests queue and running ones get preempted.",
            kv,
        ),
        Alert(
            "ModelfleetTTFTHigh",
            f"{ttft} > {t.ttft_p95_seconds}",
            t.ttft_for, "warning",
            f"{who_pod}: time to first token p95 above {t.ttft_p95_seconds}s",
            f"p95 of vllm:time_to_first_token_seconds over 5m is {{{{ $value | humanizeDuration }}}} on {who_pod}.",
            ttft,
        ),
        Alert(
            "ModelfleetPreemptions",
            f"{preempt} > {t.max_preemptions}",
            t.preemptions_for, "warning",
            f"{who_pod}: vLLM is preempting requests",
            f"{{{{ $value }}}} requests were preempted in the last 10 minutes on {who_pod}: the KV cache is too "
            "small for the load (they are recomputed, which costs latency).",
            preempt,
        ),
        Alert(
            "ModelfleetOOMKilled",
            f"(({restarts} > 0) and on({ns}, pod, container) ({oom} == 1)) * on({ns}, pod) "
            f"group_left({n.KSM_POD_LLM}) {owner}",
            "0m", "warning",
            "{{ $labels.namespace }}/{{ $labels.pod }} restarted after an OOMKill",
            "Container {{ $labels.container }} of {{ $labels.namespace }}/{{ $labels.pod }} (LLMDeployment "
            "{{ $labels.label_modelfleet_io_deployment }}) restarted in the last 15 minutes and was last "
            "terminated OOMKilled.",
            f"{restarts} * on({ns}, pod) group_left({n.KSM_POD_LLM}) {owner}", "kube-state-metrics",
        ),
        Alert(
            "ModelfleetMetricsMissing",
            f"({n.LLM_READY_REPLICAS} > 0) unless {on} {reporting}",
            t.metrics_missing_for, "warning",
            f"{who}: ready replicas but no vLLM metrics in Prometheus",
            f"{who} has {{{{ $value }}}} ready replicas but Prometheus has no vllm:num_requests_waiting series "
            "labelled with it: the autoscaler holds and dashboards are blind.",
            n.LLM_READY_REPLICAS, "operator",
        ),
        Alert(
            "ModelfleetOperatorDown",
            # absent() of a comparison carries no labels: put the job back for routing.
            f'label_replace(absent(up{job} == 1), "job", "{n.OPERATOR_JOB}", "", "")',
            t.operator_down_for, "critical",
            "The modelfleet operator is down or not scraped",
            f'No scrape target with job="{n.OPERATOR_JOB}" is up: LLMDeployments are neither reconciled nor '
            "autoscaled.",
            f"up{job}", "operator",
        ),
        Alert(
            "ModelfleetOperatorLoopStalled",
            # A standby (leader election) runs only its lease loop: judge the leader's loops.
            f"(time() - {n.LOOP_LAST_ROUND}{job} > {t.loop_stalled_seconds}) "
            f"unless on(job, instance) ({n.LEADER}{job} == 0)",
            t.loop_stalled_for, "critical",
            "The modelfleet operator's {{ $labels.loop }} loop is stalled",
            "The {{ $labels.loop }} loop of the operator on {{ $labels.instance }} finished no round for "
            "{{ $value | humanizeDuration }} (its errors: modelfleet_loop_errors_total and the operator's log): "
            "drift is not repaired, or scaling has stopped.",
            f"time() - {n.LOOP_LAST_ROUND}{job}", "operator",
        ),
    ]


def rules_file(t: Thresholds | None = None) -> dict[str, object]:
    """The plain Prometheus rules file (``rule_files:`` in prometheus.yml, ``promtool check rules``)."""
    t = t or Thresholds()
    return {"groups": [{"name": GROUP, "rules": [a.rule(t.runbook_base_url) for a in alerts(t)]}]}


def dump(doc: object) -> str:
    """YAML as the generator writes it: key order kept, long lines unfolded."""
    return yaml.safe_dump(doc, sort_keys=False, width=100_000, allow_unicode=True)


_PROM_TEMPLATE = re.compile(r"\{\{.*?\}\}")


def helm_groups() -> str:
    """``spec.groups`` for the chart's PrometheusRule: Prometheus' own ``{{ }}`` escaped, thresholds from values."""
    marker = "@@HELM@@"
    helm = Thresholds.helm()
    placeholders = Thresholds(**{f.name: f"{marker}{f.name}{marker}" for f in fields(Thresholds)})
    text = dump(rules_file(placeholders)["groups"])
    text = _PROM_TEMPLATE.sub(lambda m: "{{`" + m.group(0) + "`}}", text)
    for f in fields(Thresholds):
        text = text.replace(f"{marker}{f.name}{marker}", getattr(helm, f.name))
    if marker in text:
        raise ValueError("a threshold placeholder was split by the YAML dumper")
    return text
