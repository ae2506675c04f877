"""Every metric and label name the dashboard, the alert rules and `modelfleet status` read, in one place.

vLLM names come from the engine's per-release tables (``modelfleet.engines.vllm``, generated from the
vllm package): the roles the table defines (waiting, running, KV usage, TTFT) are taken from it; the
others are written here and a test checks that every supported release (0.11.0 .. 0.32.0) exports each
of them, so one query serves every supported version. Counters carry prometheus_client's ``_total``
suffix as scraped. All vLLM series carry ``model_name`` and ``engine``; the chart's PodMonitor (and the
e2e file-SD targets) add ``namespace``, ``modelfleet_io_deployment`` and ``pod``.
"""

from __future__ import annotations

from modelfleet.engines import vllm as _vllm

# -- vLLM (per pod) ----------------------------------------------------------------------------
VLLM_RUNNING = _vllm.role_names("running")[0]
VLLM_WAITING = _vllm.role_names("waiting")[0]
VLLM_KV_USAGE = _vllm.role_names("kv_cache_usage")[0]  # a fraction, 1 = every KV block in use
VLLM_TTFT = _vllm.role_names("ttft")[0]  # histogram
VLLM_PREEMPTIONS = "vllm:num_preemptions_total"
VLLM_PROMPT_TOKENS = "vllm:prompt_tokens_total"
VLLM_GENERATION_TOKENS = "vllm:generation_tokens_total"
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"  # label finished_reason: stop|length|abort|error|repetition
VLLM_ITL = "vllm:inter_token_latency_seconds"  # histogram (vLLM < 0.11: vllm:time_per_output_token_seconds)
VLLM_E2E = "vllm:e2e_request_latency_seconds"  # histogram

VLLM_METRICS = (VLLM_RUNNING, VLLM_WAITING, VLLM_KV_USAGE, VLLM_PREEMPTIONS, VLLM_PROMPT_TOKENS,
                VLLM_GENERATION_TOKENS, VLLM_REQUEST_SUCCESS, VLLM_TTFT, VLLM_ITL, VLLM_E2E)

# -- the operator's /metrics -------------------------------------------------------------------
# Per LLMDeployment (labels namespace, name): monitoring/fleet.py, from spec and status.
LLM_INFO = "modelfleet_llm_info"
LLM_REPLICAS = "modelfleet_llm_replicas"
LLM_READY_REPLICAS = "modelfleet_llm_ready_replicas"
LLM_DESIRED_REPLICAS = "modelfleet_llm_desired_replicas"
LLM_MIN_REPLICAS = "modelfleet_llm_autoscaling_min_replicas"
LLM_MAX_REPLICAS = "modelfleet_llm_autoscaling_max_replicas"
LLM_TARGET_QUEUE = "modelfleet_llm_autoscaling_target_queue_depth"
LLM_MAX_NUM_SEQS = "modelfleet_llm_max_num_seqs"
LLM_PLANNED_SEQS = "modelfleet_llm_capacity_max_concurrent_sequences"
LLM_KV_TOKENS = "modelfleet_llm_capacity_kv_cache_tokens"
LLM_CONDITION = "modelfleet_llm_condition"
# The autoscaler (autoscaler/loop.py) and the reconciler (sync.py, kube/).
AUTOSCALER_DESIRED = "modelfleet_autoscaler_desired_replicas"
AUTOSCALER_QUEUE = "modelfleet_autoscaler_queue_depth"
AUTOSCALER_RUNNING = "modelfleet_autoscaler_running"
AUTOSCALER_AVAILABLE = "modelfleet_autoscaler_metrics_available"
AUTOSCALER_SCALES = "modelfleet_autoscaler_scale_events_total"  # label direction: up|down
AUTOSCALER_CYCLE = "modelfleet_autoscaler_cycle_seconds"  # histogram
AUTOSCALER_FETCH = "modelfleet_autoscaler_metrics_fetch_seconds"  # histogram: the Prometheus query
AUTOSCALER_FETCH_ERRORS = "modelfleet_autoscaler_metrics_errors_total"
RESYNC_ROUNDS = "modelfleet_resync_rounds_total"
RECONCILES = "modelfleet_reconciles_total"  # label outcome: changed|unchanged|error
KUBE_REQUESTS = "modelfleet_kube_requests_total"  # labels verb, resource
LEADER = "modelfleet_leader"  # 1 on the leader, 0 on a standby (leader election)
# Supervised background loops (supervise.py), label loop: resync | registry | autoscaler | lease.
LOOP_ROUNDS = "modelfleet_loop_rounds_total"  # rounds finished without an error
LOOP_ERRORS = "modelfleet_loop_errors_total"  # rounds that raised
LOOP_LAST_ROUND = "modelfleet_loop_last_round_timestamp_seconds"  # unix time of the last finished round
KUBE_SECONDS = "modelfleet_kube_request_duration_seconds"  # histogram: one Kubernetes API call

OPERATOR_METRICS = (LLM_INFO, LLM_REPLICAS, LLM_READY_REPLICAS, LLM_DESIRED_REPLICAS, LLM_MIN_REPLICAS,
                    LLM_MAX_REPLICAS, LLM_TARGET_QUEUE, LLM_MAX_NUM_SEQS, LLM_PLANNED_SEQS, LLM_KV_TOKENS,
                    LLM_CONDITION, AUTOSCALER_DESIRED, AUTOSCALER_QUEUE, AUTOSCALER_AVAILABLE, AUTOSCALER_SCALES,
                    AUTOSCALER_CYCLE, AUTOSCALER_FETCH, RESYNC_ROUNDS, RECONCILES, KUBE_REQUESTS, LEADER, LOOP_ROUNDS,
                    LOOP_ERRORS, LOOP_LAST_ROUND, KUBE_SECONDS)

# -- kube-state-metrics (v2) -------------------------------------------------------------------
# kube_pod_labels carries the pod label modelfleet.io/deployment only when kube-state-metrics runs with
# --metric-labels-allowlist=pods=[modelfleet.io/deployment] (kube-prometheus-stack:
# kube-state-metrics.metricLabelsAllowlist).
KSM_POD_LABELS = "kube_pod_labels"
KSM_RESTARTS = "kube_pod_container_status_restarts_total"
KSM_LAST_TERMINATED = "kube_pod_container_status_last_terminated_reason"  # label reason, e.g. OOMKilled

KSM_METRICS = (KSM_POD_LABELS, KSM_RESTARTS, KSM_LAST_TERMINATED)

# -- labels ------------------------------------------------------------------------------------
NAMESPACE = "namespace"
LLM = "name"  # the LLMDeployment's name on the operator's series
POD_LLM = "modelfleet_io_deployment"  # the same on vLLM series (relabelled pod label)
KSM_POD_LLM = "label_modelfleet_io_deployment"  # the same on kube_pod_labels
#: The job label of the operator's scrape target (the chart's PodMonitor sets it).
OPERATOR_JOB = "modelfleet-operator"
