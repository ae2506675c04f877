"""promtool unit tests for the alert rules: for every alert, series that fire it and series that do not.

Every expected label, value and annotation is written out by hand from the series below (not taken
from rules.py). Series notation is promtool's: ``'a+bxN'`` starts at a and adds b, N more samples,
one per ``interval`` (1m).
"""

from __future__ import annotations

from typing import Any

DOCS = "https://github.com/modelfleet/modelfleet/blob/main/docs/monitoring.md"
VLLM = 'namespace="s",modelfleet_io_deployment="a",model_name="a",engine="0"'
OP = 'job="modelfleet-operator",instance="op:9090"'


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {"series": f"{name}{{{labels}}}", "values": values}


def llm(name: str, values: str, extra: str = "") -> dict[str, str]:
    """A per-LLMDeployment series of the operator's /metrics for s/a."""
    return series(name, f'namespace="s",name="a",{OP}{extra}', values)


def alert(name: str, eval_time: str, fired: list[dict[str, Any]]) -> dict[str, Any]:
    return {"eval_time": eval_time, "alertname": name, "exp_alerts": fired}


def case(name: str, inputs: list[dict[str, str]], checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "interval": "1m", "input_series": inputs, "alert_rule_test": checks}


def runbook(alertname: str) -> str:
    return f"{DOCS}#{alertname.lower()}"


def fired(alertname: str, labels: dict[str, str], summary: str, description: str,
          severity: str = "warning") -> dict[str, Any]:
    """One expected firing alert: its labels (severity added) and all three annotations."""
    return {"exp_labels": {"severity": severity, **labels},
            "exp_annotations": {"summary": summary, "description": description, "runbook_url": runbook(alertname)}}


QUEUE = "ModelfleetQueueAboveTargetAtMaxReplicas"
# Two pods waiting 10 + 7 = 17 requests; target 4 per ready replica x 2 ready = 8; desired 4 = maxReplicas 4.
QUEUE_FIRING = fired(
    QUEUE, {"namespace": "s", "name": "a"}, "s/a: queue above the autoscaler's target at maxReplicas",
    "17 requests wait on s/a, more than targetQueueDepth x ready replicas, and the autoscaler is already at "
    "maxReplicas: users wait. Raise maxReplicas, add GPUs, or shed load.")


def queue_inputs(waiting: tuple[str, str] = ("10x30", "7x30"), desired: str = "4x30") -> list[dict[str, str]]:
    return [
        series("vllm:num_requests_waiting", f'{VLLM},pod="a-1"', waiting[0]),
        series("vllm:num_requests_waiting", f'{VLLM},pod="a-2"', waiting[1]),
        llm("modelfleet_llm_autoscaling_target_queue_depth", "4x30"),
        llm("modelfleet_llm_ready_replicas", "2x30"),
        llm("modelfleet_llm_desired_replicas", desired),
        llm("modelfleet_llm_autoscaling_max_replicas", "4x30"),
    ]


KV = "ModelfleetKVCacheNearlyFull"
TTFT = "ModelfleetTTFTHigh"
PREEMPT = "ModelfleetPreemptions"
OOM = "ModelfleetOOMKilled"
MISSING = "ModelfleetMetricsMissing"
DOWN = "ModelfleetOperatorDown"
STALLED = "ModelfleetOperatorLoopStalled"


def ttft_inputs(slow: bool) -> list[dict[str, str]]:
    """10 requests a minute; all between 2.5 s and 5 s (p95 = 2.5 + 0.95 x 2.5 = 4.875 s), or all below 1 s
    (p95 = 0.95 x 1 = 0.95 s)."""
    lbl = f'{VLLM},pod="a-1"'
    name = "vllm:time_to_first_token_seconds_bucket"
    if slow:
        return [series(name, f'{lbl},le="1.0"', "0x30"), series(name, f'{lbl},le="2.5"', "0x30"),
                series(name, f'{lbl},le="5.0"', "0+10x30"), series(name, f'{lbl},le="+Inf"', "0+10x30")]
    return [series(name, f'{lbl},le="1.0"', "0+10x30"), series(name, f'{lbl},le="2.5"', "0+10x30"),
            series(name, f'{lbl},le="5.0"', "0+10x30"), series(name, f'{lbl},le="+Inf"', "0+10x30")]


def ksm(restarts: str, reason: str, owned: bool = True) -> list[dict[str, str]]:
    """kube-state-metrics series for pod s/a-1, container vllm."""
    pod = 'namespace="s",pod="a-1",job="kube-state-metrics"'
    out = [series("kube_pod_container_status_restarts_total", f'{pod},container="vllm"', restarts),
           series("kube_pod_container_status_last_terminated_reason", f'{pod},container="vllm",reason="{reason}"',
                  "1x20")]
    labels = 'label_modelfleet_io_deployment="a"' if owned else 'label_app="other"'
    out.append(series("kube_pod_labels", f"{pod},{labels}", "1x20"))
    return out


DOWN_FIRING = fired(DOWN, {"job": "modelfleet-operator"}, "The modelfleet operator is down or not scraped",
                    'No scrape target with job="modelfleet-operator" is up: LLMDeployments are neither reconciled '
                    "nor autoscaled.", "critical")
SA = {"namespace": "s", "modelfleet_io_deployment": "a"}


def tests() -> list[dict[str, Any]]:
    """Every promtool test case."""
    return [
        case("queue above target at maxReplicas fires after 10m", queue_inputs(), [
            alert(QUEUE, "9m", []),  # pending: the condition holds, `for: 10m` not yet
            alert(QUEUE, "15m", [QUEUE_FIRING]),
        ]),
        case("queue above target below maxReplicas: the autoscaler can still add replicas", queue_inputs(
            desired="3x30"), [alert(QUEUE, "15m", [])]),
        case("queue at target (4 + 4 = 8) at maxReplicas", queue_inputs(waiting=("4x30", "4x30")), [
            alert(QUEUE, "15m", [])]),
        case("KV cache above 90 % for 5m on one pod", [
            series("vllm:kv_cache_usage_perc", f'{VLLM},pod="a-1"', "0.95x10"),
            series("vllm:kv_cache_usage_perc", f'{VLLM},pod="a-2"', "0.5x10"),
        ], [
            alert(KV, "4m", []),
            alert(KV, "6m", [fired(KV, {**SA, "pod": "a-1"}, "s/a: KV cache above 0.9 on pod a-1",
                                   "vllm:kv_cache_usage_perc is 95% on a-1 of s/a: new requests queue and running "
                                   "ones get preempted.")]),
        ]),
        case("KV cache at exactly 90 % does not fire", [
            series("vllm:kv_cache_usage_perc", f'{VLLM},pod="a-1"', "0.9x10"),
        ], [alert(KV, "8m", [])]),
        case("TTFT p95 4.875 s > 2 s for 10m", ttft_inputs(slow=True), [
            alert(TTFT, "10m", []),  # true from 1m on (a rate needs two samples): for 10m -> firing from 11m
            alert(TTFT, "12m", [fired(TTFT, SA, "s/a: time to first token p95 above 2s",
                                      "p95 of vllm:time_to_first_token_seconds over 5m is 4.875s on s/a.")]),
        ]),
        case("TTFT p95 0.95 s", ttft_inputs(slow=False), [alert(TTFT, "20m", [])]),
        case("preemptions: 2 a minute for 10 minutes", [
            series("vllm:num_preemptions_total", f'{VLLM},pod="a-1"', "0+2x30"),
        ], [
            alert(PREEMPT, "20m", [fired(PREEMPT, SA, "s/a: vLLM is preempting requests",
                                         "20 requests were preempted in the last 10 minutes on s/a: the KV cache is "
                                         "too small for the load (they are recomputed, which costs latency).")]),
        ]),
        case("no new preemptions (the counter stays at 5)", [
            series("vllm:num_preemptions_total", f'{VLLM},pod="a-1"', "5x30"),
        ], [alert(PREEMPT, "20m", [])]),
        case("OOMKilled restart of a modelfleet pod fires at once", ksm("0 0 0 0 0 1 1 1 1 1 1", "OOMKilled"), [
            alert(OOM, "4m", []),
            alert(OOM, "6m", [fired(
                OOM, {"namespace": "s", "pod": "a-1", "container": "vllm", "job": "kube-state-metrics",
                      "label_modelfleet_io_deployment": "a"},
                "s/a-1 restarted after an OOMKill",
                "Container vllm of s/a-1 (LLMDeployment a) restarted in the last 15 minutes and was last terminated "
                "OOMKilled.")]),
        ]),
        case("a restart whose last termination was Error, not OOMKilled", ksm("0 0 0 0 0 1 1 1 1 1 1", "Error"), [
            alert(OOM, "6m", [])]),
        case("OOMKilled long ago, no restart in the last 15 minutes", ksm("1x20", "OOMKilled"), [
            alert(OOM, "18m", [])]),
        case("OOMKilled restart of a pod that is not modelfleet's", ksm("0 0 0 0 0 1 1 1 1 1 1", "OOMKilled",
                                                                        owned=False), [alert(OOM, "6m", [])]),
        case("ready replicas and no vLLM series", [llm("modelfleet_llm_ready_replicas", "2x10")], [
            alert(MISSING, "4m", []),
            alert(MISSING, "6m", [fired(
                MISSING, {"namespace": "s", "name": "a", "job": "modelfleet-operator", "instance": "op:9090"},
                "s/a: ready replicas but no vLLM metrics in Prometheus",
                "s/a has 2 ready replicas but Prometheus has no vllm:num_requests_waiting series labelled with it: "
                "the autoscaler holds and dashboards are blind.")]),
        ]),
        case("ready replicas with vLLM series", [
            llm("modelfleet_llm_ready_replicas", "2x10"),
            series("vllm:num_requests_waiting", f'{VLLM},pod="a-1"', "0x10"),
        ], [alert(MISSING, "8m", [])]),
        case("no ready replicas, no vLLM series", [llm("modelfleet_llm_ready_replicas", "0x10")], [
            alert(MISSING, "8m", [])]),
        case("operator target down", [series("up", OP, "0x10")], [
            alert(DOWN, "4m", []), alert(DOWN, "6m", [DOWN_FIRING])]),
        case("operator never scraped at all", [series("up", 'job="other",instance="x"', "1x10")], [
            alert(DOWN, "6m", [DOWN_FIRING])]),
        case("operator up", [series("up", OP, "1x10")], [alert(DOWN, "8m", [])]),
        # The resync loop's last round was at minute 2 (unix time 120); the autoscaler's keeps moving.
        case("the leader's resync loop stalled", [
            series("modelfleet_loop_last_round_timestamp_seconds", f'{OP},loop="resync"', "0+60x2 120x30"),
            series("modelfleet_loop_last_round_timestamp_seconds", f'{OP},loop="autoscaler"', "0+60x30"),
            series("modelfleet_leader", OP, "1x30"),
        ], [
            alert(STALLED, "12m", []),  # more than 600 s behind from 13m on; `for: 5m` -> firing from 18m
            alert(STALLED, "19m", [fired(
                STALLED, {"job": "modelfleet-operator", "instance": "op:9090", "loop": "resync"},
                "The modelfleet operator's resync loop is stalled",
                "The resync loop of the operator on op:9090 finished no round for 17m 0s (its errors: "
                "modelfleet_loop_errors_total and the operator's log): drift is not repaired, or scaling has "
                "stopped.", "critical")]),
        ]),
        case("a standby's loops are not judged", [
            series("modelfleet_loop_last_round_timestamp_seconds", f'{OP},loop="resync"', "0x30"),
            series("modelfleet_leader", OP, "0x30"),
        ], [alert(STALLED, "20m", [])]),
        case("an operator without leader election (no modelfleet_leader) is judged", [
            series("modelfleet_loop_last_round_timestamp_seconds", f'{OP},loop="registry"', "0x30"),
        ], [alert(STALLED, "20m", [fired(
            STALLED, {"job": "modelfleet-operator", "instance": "op:9090", "loop": "registry"},
            "The modelfleet operator's registry loop is stalled",
            "The registry loop of the operator on op:9090 finished no round for 20m 0s (its errors: "
            "modelfleet_loop_errors_total and the operator's log): drift is not repaired, or scaling has "
            "stopped.", "critical")])]),
        case("loops making rounds", [
            series("modelfleet_loop_last_round_timestamp_seconds", f'{OP},loop="resync"', "0+60x40"),
            series("modelfleet_leader", OP, "1x40"),
        ], [alert(STALLED, "30m", [])]),
    ]
