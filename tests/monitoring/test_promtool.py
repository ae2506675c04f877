"""The committed alert rules through Prometheus' own promtool: syntax (`check rules`) and behaviour
(`test rules`: series that fire each alert and series that do not), plus the dashboard's
kube-state-metrics queries, which cannot run in e2e (no kube-state-metrics there), as `promql_expr_test`s.

promtool comes with Debian's prometheus package (`make tools` / `e2e/cluster build` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promtool_cases import tests as promtool_tests

from modelfleet.monitoring.panels import Scope, all_queries

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "manifests" / "monitoring" / "prometheus-rules.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    """Debian's promtool; fails (never skips) when it is missing."""
    found = os.environ.get("PROMTOOL") or shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(found).is_file():
        pytest.fail("promtool not found: run `make tools` (installs Debian's prometheus package) or set PROMTOOL",
                    pytrace=False)
    return found


def run(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False)


def test_check_rules_accepts_the_committed_rules_file(promtool: str) -> None:
    res = run(promtool, "check", "rules", str(RULES))
    assert res.returncode == 0, f"promtool check rules {RULES}:\n{res.stdout}{res.stderr}"
    assert "8 rules found" in res.stdout, res.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in promtool_tests():
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    assert fired == alerts, f"alerts without a firing case: {alerts - fired}; unknown: {fired - alerts}"
    assert quiet == alerts, f"alerts without a quiet case: {alerts - quiet}; unknown: {quiet - alerts}"


def test_rules_fire_and_stay_quiet_as_the_series_say(promtool: str, tmp_path: Path) -> None:
    doc = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": promtool_tests()}
    (tmp_path / "alerts_test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    res = run(promtool, "test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert res.returncode == 0, f"promtool test rules:\n{res.stdout}{res.stderr}"


def ksm_case(queries: dict[str, str]) -> dict[str, Any]:
    """Pod s/a-1 of LLMDeployment a restarted once at minute 5 and was OOMKilled; pod s/b-1 (another
    LLMDeployment) restarted too. Over the 5m window ending at 6m: one restart of a-1, none counted for b-1."""
    ksm = 'job="kube-state-metrics",namespace="s"'
    restarts, oom = queries["{{pod}} restarts"], queries["{{pod}} last terminated OOMKilled"]
    return {
        "interval": "1m",
        "input_series": [
            {"series": f'kube_pod_container_status_restarts_total{{{ksm},pod="a-1",container="vllm"}}',
             "values": "0 0 0 0 0 1 1"},
            {"series": f'kube_pod_container_status_restarts_total{{{ksm},pod="b-1",container="vllm"}}',
             "values": "0 0 0 0 0 1 1"},
            {"series": f'kube_pod_container_status_last_terminated_reason{{{ksm},pod="a-1",container="vllm",'
                       'reason="OOMKilled"}', "values": "1 1 1 1 1 1 1"},
            {"series": f'kube_pod_labels{{{ksm},pod="a-1",label_modelfleet_io_deployment="a"}}',
             "values": "1 1 1 1 1 1 1"},
            {"series": f'kube_pod_labels{{{ksm},pod="b-1",label_modelfleet_io_deployment="b"}}',
             "values": "1 1 1 1 1 1 1"},
        ],
        "promql_expr_test": [
            {"expr": restarts, "eval_time": "6m", "exp_samples": [{"labels": '{pod="a-1"}', "value": 1}]},
            {"expr": oom, "eval_time": "6m", "exp_samples": [{"labels": '{pod="a-1"}', "value": 1}]},
        ],
    }


def test_dashboard_kube_state_metrics_queries_select_the_llm_pods(promtool: str, tmp_path: Path) -> None:
    scope = Scope(namespace="s", deployment="a", rate="5m")
    queries = {q.legend: q.expr for _, q in all_queries(scope) if q.source == "kube-state-metrics"}
    assert set(queries) == {"{{pod}} restarts", "{{pod}} last terminated OOMKilled"}, queries
    (tmp_path / "empty.yaml").write_text("groups: []\n")
    doc = {"rule_files": ["empty.yaml"], "evaluation_interval": "1m", "tests": [ksm_case(queries)]}
    (tmp_path / "ksm_test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    res = run(promtool, "test", "rules", "ksm_test.yaml", cwd=tmp_path)
    assert res.returncode == 0, f"promtool test rules (dashboard queries):\n{res.stdout}{res.stderr}"
