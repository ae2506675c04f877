"""The generated dashboard and rules: structure, variables, runbooks, the chart's escaping and values."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from modelfleet.engines import vllm
from modelfleet.monitoring import names, rules
from modelfleet.monitoring.panels import Scope, all_queries

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "manifests" / "monitoring" / "grafana-dashboard.json"
RULES = ROOT / "manifests" / "monitoring" / "prometheus-rules.yaml"
DOCS = ROOT / "docs" / "monitoring.md"
VALUES = ROOT / "charts" / "modelfleet" / "values.yaml"
GRAFANA_VARIABLES = {"$namespace", "$deployment", "$__rate_interval", "${datasource}"}


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def targets(doc: dict) -> list[dict]:
    return [t for p in doc["panels"] if p["type"] != "row" for t in p["targets"]]


def test_chart_and_manifests_carry_the_same_dashboard() -> None:
    assert (ROOT / "charts" / "modelfleet" / "dashboards" / "modelfleet.json").read_text() == DASHBOARD.read_text()


def test_dashboard_uses_only_its_own_variables_and_datasource() -> None:
    doc = dashboard()
    assert [v["name"] for v in doc["templating"]["list"]] == ["datasource", "namespace", "deployment"]
    for p in doc["panels"]:
        if p["type"] != "row":
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
    for t in targets(doc):
        used = set(re.findall(r"\$\{?\w+\}?", t["expr"]))
        assert used <= GRAFANA_VARIABLES, (t["expr"], used - GRAFANA_VARIABLES)


def test_dashboard_has_a_fleet_row_a_deployment_row_and_an_operator_row() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == ["Fleet (every LLMDeployment in $namespace)", "LLMDeployment $deployment", "Operator"]


@pytest.mark.parametrize("needle", [
    "vllm:num_requests_running", "vllm:num_requests_waiting", "modelfleet_llm_autoscaling_target_queue_depth",
    "modelfleet_llm_max_num_seqs", "modelfleet_llm_capacity_max_concurrent_sequences", "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_bucket",
    "vllm:generation_tokens_total", "vllm:prompt_tokens_total", "modelfleet_llm_desired_replicas",
    "modelfleet_llm_ready_replicas", "vllm:num_preemptions_total", "kube_pod_container_status_restarts_total",
    'reason="OOMKilled"', "modelfleet_reconciles_total", "modelfleet_loop_rounds_total", "modelfleet_loop_errors_total",
    "modelfleet_kube_request_duration_seconds_bucket",
    "modelfleet_autoscaler_metrics_fetch_seconds_bucket", "modelfleet_kube_requests_total",
])
def test_dashboard_shows_what_the_issue_asks_for(needle: str) -> None:
    assert any(needle in t["expr"] for t in targets(dashboard())), needle


def test_latency_panels_have_p50_p95_p99() -> None:
    for title in ("Time to first token", "Inter-token latency"):
        panel = next(p for p in dashboard()["panels"] if p.get("title") == title)
        assert [t["legendFormat"] for t in panel["targets"]] == ["p50", "p95", "p99"]
        assert [re.match(r"histogram_quantile\(([0-9.]+),", t["expr"]).group(1) for t in panel["targets"]] == [
            "0.5", "0.95", "0.99"]


def test_scale_decisions_are_annotations() -> None:
    (ann,) = dashboard()["annotations"]["list"]
    assert ann["expr"].startswith("changes(modelfleet_autoscaler_desired_replicas{")
    assert ann["titleFormat"] == "desired replicas changed" and ann["textFormat"] == "{{namespace}}/{{name}}"


def test_every_vllm_metric_in_a_query_is_one_of_the_known_names() -> None:
    """A misspelt vLLM name would only show as an empty panel: every `vllm:` token must be catalogued."""
    known = {m + suffix for m in names.VLLM_METRICS for suffix in ("", "_bucket", "_count", "_sum")}
    exprs = [q.expr for _, q in all_queries(Scope("s", "a", "5m"))] + [a.expr for a in rules.alerts()]
    used = {tok for e in exprs for tok in re.findall(r"vllm:[a-z_:]+", e)}
    assert used and used <= known, used - known


def test_every_alert_has_a_runbook_section_its_url_points_at() -> None:
    headings = {h.strip() for h in re.findall(r"^### (.+)$", DOCS.read_text(), flags=re.MULTILINE)}
    doc = yaml.safe_load(RULES.read_text())
    for rule in doc["groups"][0]["rules"]:
        assert rule["alert"] in headings, f"docs/monitoring.md has no '### {rule['alert']}' runbook"
        # GitHub's anchor of a heading made of letters only: the heading in lower case.
        assert rule["annotations"]["runbook_url"] == f"{rules.DOCS_URL}#{rule['alert'].lower()}"


def test_values_yaml_has_every_threshold_with_the_generator_default() -> None:
    values = yaml.safe_load(VALUES.read_text())["monitoring"]["rules"]
    for key, default in rules.value_keys().items():
        assert key in values, f"charts/modelfleet/values.yaml lacks monitoring.rules.{key}"
        assert str(values[key]) == default or float(values[key]) == float(default), (key, values[key], default)


def test_helm_template_escapes_prometheus_templates_and_reads_thresholds_from_values() -> None:
    text = rules.helm_groups()
    assert "{{ .Values.monitoring.rules.ttftP95Seconds }}" in text
    unescaped = [m for m in re.findall(r"\{\{.*?\}\}", text)
                 if not m.startswith(("{{ .Values.", "{{`"))]
    assert not unescaped, unescaped
    assert "{{`{{ $labels.namespace }}`}}" in text


@pytest.mark.parametrize("version", vllm.SUPPORTED_VERSIONS)
def test_every_vllm_name_is_exported_by_every_supported_release(version: str) -> None:
    """From the engine's table generated from the vllm package itself (not from names.py)."""
    table = vllm.flag_table(version)
    for name in names.VLLM_METRICS:
        base = name.removesuffix("_total")  # the table lists counters as vLLM declares them
        assert table.has_metric(base), f"vLLM {version} does not export {base} by default"
