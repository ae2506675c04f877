"""`modelfleet status`: parsing live numbers, building rows, the table — from hand-written inputs."""

from __future__ import annotations

import json

import pytest

from modelfleet.cli import main
from modelfleet.monitoring import statusview as sv

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
LLM = {
    "metadata": {"namespace": "serving", "name": "qwen"},
    "spec": {"replicas": 1, "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 4,
                                            "targetQueueDepth": 2}},
    "status": {"phase": "Ready", "readyReplicas": 3, "desiredReplicas": 3,
               "autoscaler": {"decision": "scale-up", "reason": "queue 9 > target 6",
                              "lastDecisionTime": "2027-01-15T07:59:20Z"}},
}
FIXED = {"metadata": {"namespace": "a", "name": "fixed"}, "spec": {"replicas": 2}, "status": {}}


def item(signal: str, value: str, ns: str = "serving", name: str = "qwen") -> dict:
    return {"metric": {"namespace": ns, "name": name, "signal": signal}, "value": [NOW, value]}


def test_parse_prometheus_groups_signals_and_drops_nan() -> None:
    got = sv.parse_prometheus([item("waiting", "9"), item("running", "6"), item("kv", "0.75"),
                               item("pods", "3"), item("ttft_p95", "NaN"), item("other", "1")])
    assert got == {("serving", "qwen"): sv.Live(waiting=9, running=6, kv_cache_usage=0.75, ttft_p95=None, pods=3)}


def test_parse_operator_metrics_reads_the_autoscaler_gauges() -> None:
    text = ('modelfleet_autoscaler_queue_depth{namespace="serving",name="qwen"} 9.0\n'
            'modelfleet_autoscaler_running{namespace="serving",name="qwen"} 6.0\n'
            'modelfleet_autoscaler_desired_replicas{namespace="serving",name="qwen"} 3.0\n')
    assert sv.parse_operator_metrics(text) == {("serving", "qwen"): sv.Live(waiting=9, running=6)}


def test_rows_join_status_and_live_numbers() -> None:
    live = {("serving", "qwen"): sv.Live(waiting=9, running=6, kv_cache_usage=1.0, ttft_p95=0.84, pods=3)}
    qwen, fixed = sv.rows([LLM, FIXED], live, NOW)[::-1]
    assert (fixed.namespace, fixed.desired, fixed.min_replicas, fixed.waiting, fixed.decision) == ("a", 2, None,
                                                                                                   None, "-")
    # target: targetQueueDepth 2 x 3 ready = 6; the decision was 40 s before NOW
    assert (qwen.ready, qwen.desired, qwen.target_waiting, qwen.decision_age_seconds) == (3, 3, 6.0, 40.0)


def test_table_cells() -> None:
    live = {("serving", "qwen"): sv.Live(waiting=9, running=6, kv_cache_usage=1.0, ttft_p95=0.84, pods=3)}
    lines = sv.table(sv.rows([LLM, FIXED], live, NOW)).splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "PHASE", "READY/DESIRED", "MIN-MAX", "RUNNING",
                                "WAITING/TARGET", "KV", "TTFT", "P95", "LAST", "DECISION"]
    assert lines[1].split() == ["a", "fixed", "-", "0/2", "-", "-", "-", "-", "-", "-"]
    assert lines[2].split() == ["serving", "qwen", "Ready", "3/3", "1-4", "6", "9/6", "100%", "0.84s",
                                "scale-up", "40s", "ago"]


def test_json_output_has_raw_numbers() -> None:
    (row,) = json.loads(sv.as_json(sv.rows([LLM], {}, NOW)))
    assert row["target_waiting"] == 6.0 and row["waiting"] is None and row["decision"] == "scale-up"


@pytest.mark.parametrize("argv", [
    ["status", "--prometheus", "prometheus:9090"],
    ["status", "--operator-metrics", "ftp://x/metrics"],
    ["status", "--prometheus", "http://p:9090", "--operator-metrics", "http://o/metrics"],
    ["status", "-o", "yaml"],
])
def test_bad_flags_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "usage: modelfleet status" in capsys.readouterr().err


def test_bad_window_exits_2_before_touching_the_cluster(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--window", "five minutes"]) == 2
    assert "--window 'five minutes'" in capsys.readouterr().err
