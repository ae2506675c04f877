"""The chart's optional monitoring: dashboard ConfigMap for Grafana's sidecar, PrometheusRule only where
its CRD exists, thresholds from values, off by default (so manifests/ does not change)."""

from __future__ import annotations

import json

import pytest
import yaml
from installkit import CHART, ROOT, by_kind, helm, needs_helm, objects, one, render

pytestmark = needs_helm

RULES_FILE = ROOT / "manifests" / "monitoring" / "prometheus-rules.yaml"
DASHBOARD = ROOT / "manifests" / "monitoring" / "grafana-dashboard.json"
HAS_CRD = ("--api-versions", "monitoring.coreos.com/v1/PrometheusRule")
ON = ("--set", "monitoring.rules.enabled=true", "--set", "monitoring.dashboards.enabled=true")


def test_off_by_default() -> None:
    objs = objects(*HAS_CRD)
    assert not by_kind(objs, "PrometheusRule") and not by_kind(objs, "ConfigMap")


def test_dashboard_configmap_for_the_grafana_sidecar() -> None:
    cm = one(objects("--set", "monitoring.dashboards.enabled=true"), "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "modelfleet-system"
    assert json.loads(cm["data"]["modelfleet.json"]) == json.loads(DASHBOARD.read_text())


def test_dashboard_label_namespace_and_folder_are_settable() -> None:
    sets = ["monitoring.dashboards.enabled=true", "monitoring.dashboards.label=dash",
            "monitoring.dashboards.labelValue=yes", "monitoring.dashboards.namespace=grafana",
            "monitoring.dashboards.annotations.grafana_folder=LLM"]
    cm = one(objects(*[arg for s in sets for arg in ("--set", s)]), "ConfigMap")
    assert cm["metadata"]["labels"]["dash"] == "yes" and "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["namespace"] == "grafana"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "LLM"}


def test_no_prometheusrule_without_its_crd() -> None:
    assert not by_kind(objects("--set", "monitoring.rules.enabled=true"), "PrometheusRule")


def test_prometheusrule_equals_the_plain_rules_file_with_default_values() -> None:
    rule = one(objects(*ON, *HAS_CRD, "--set", "monitoring.rules.labels.release=kps"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"]["groups"] == yaml.safe_load(RULES_FILE.read_text())["groups"]


def test_thresholds_come_from_values() -> None:
    rule = one(objects(*ON, *HAS_CRD, "--set", "monitoring.rules.ttftP95Seconds=1.5", "--set",
                       "monitoring.rules.ttftFor=3m", "--set", "monitoring.rules.runbookBaseUrl=https://wiki/x"),
               "PrometheusRule")
    ttft = next(r for r in rule["spec"]["groups"][0]["rules"] if r["alert"] == "ModelfleetTTFTHigh")
    assert ttft["expr"].endswith("> 1.5") and ttft["for"] == "3m"
    assert ttft["annotations"]["runbook_url"] == "https://wiki/x#modelfleetttfthigh"
    assert ttft["annotations"]["summary"] == ("{{ $labels.namespace }}/{{ $labels.modelfleet_io_deployment }}: "
                                              "time to first token p95 above 1.5s")


@pytest.mark.parametrize(("values", "key"), [
    (["--set", "monitoring.rules.kvCacheUsage=2"], "kvCacheUsage"),
    (["--set", "monitoring.rules.kvCacheUsage=1.5"], "kvCacheUsage"),
    (["--set", "monitoring.rules.ttftP95Seconds=fast"], "ttftP95Seconds"),
    (["--set", "monitoring.rules.ttftFor=ten"], "ttftFor"),
    (["--set", "monitoring.rules.ttftP95Seconds=0"], "ttftP95Seconds"),
    (["--set", "monitoring.dashboard.enabled=true"], "dashboard"),
    (["--set", "monitoring.rules.enabled=yes"], "enabled"),
])
def test_schema_refuses_bad_monitoring_values(values: list[str], key: str) -> None:
    res = render(*values, check=False)
    assert res.returncode != 0, f"helm accepted {values}"
    assert key in res.stderr, res.stderr


def test_operator_podmonitor_keeps_llm_labels_and_sets_the_job_the_rules_use() -> None:
    monitors = by_kind(objects("--set", "podMonitor.enabled=true"), "PodMonitor")
    operator = next(m for m in monitors if m["metadata"]["name"].endswith("-operator"))
    (endpoint,) = operator["spec"]["podMetricsEndpoints"]
    assert endpoint["honorLabels"] is True
    assert {"targetLabel": "job", "replacement": "modelfleet-operator"} in endpoint["relabelings"]


def test_lint_strict_with_monitoring_on() -> None:
    res = helm("lint", "--strict", str(CHART), *ON, check=False)
    assert res.returncode == 0 and "[WARNING]" not in res.stdout, res.stdout + res.stderr

