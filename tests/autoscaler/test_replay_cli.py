"""`modelfleet autoscale replay`: output per line, bad input as FILE:LINE and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelfleet.autoscaler.cli import main

LLM = """\
apiVersion: modelfleet.io/v1alpha1
kind: LLMDeployment
metadata: {name: llama-8b, namespace: serving}
spec:
  model: {uri: hf://meta-llama/Llama-3.1-8B-Instruct}
  engine: {maxNumSeqs: 16}
  autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 8, targetQueueDepth: 4,
                scaleDownStabilizationSeconds: 60}
"""


def write(tmp_path: Path, lines: list[str], llm: str = LLM) -> tuple[str, str]:
    f, o = tmp_path / "llm.yaml", tmp_path / "obs.jsonl"
    f.write_text("---\nkind: ConfigMap\n---\n" + llm)
    o.write_text("\n".join(lines) + "\n")
    return str(f), str(o)


def line(t: float, waiting: object, running: object, ready: object, replicas: object) -> str:
    return json.dumps({"t": t, "waiting": waiting, "running": running, "ready_replicas": ready,
                       "replicas": replicas})


def test_replay_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, o = write(tmp_path, [line(0, 23, 48, 3, 3), "", line(15, 24, 96, 6, 6), line(30, None, None, 6, 6),
                            *[line(45 + 15 * i, 0, 0, 6, 6) for i in range(6)]])
    assert main(["autoscale", "replay", "-f", f, "--observations", o, "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["desired_replicas"] for r in rows] == [6, 6, 6, 6, 6, 6, 6, 5, 5]  # idle from t=45, 60 s window
    assert set(rows[0]) == {"t", "desired_replicas", "reason"}
    assert rows[0]["reason"] == "queue 23 > target 4x3 ready, running 48/48 slots: 3→6"
    assert "metrics" in rows[2]["reason"] or "no vllm" in rows[2]["reason"]
    assert [r["t"] for r in rows][:3] == [0, 15, 30]


def test_replay_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, o = write(tmp_path, [line(0, 0, 1, 1, 1)])
    assert main(["autoscale", "replay", "-f", f, "--observations", o, "-o", "table"]) == 0
    assert "DESIRED" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ("{not json", "obs.jsonl:2: Expecting property name"),
        ("[1, 2]", "obs.jsonl:2: expected a JSON object, got list"),
        ('{"t": 1, "waiting": 1, "running": 1, "ready_replicas": 1}', 'obs.jsonl:2: missing "replicas"'),
        ('{"t": 1, "waiting": "3", "running": 1, "ready_replicas": 1, "replicas": 1}',
         'obs.jsonl:2: "waiting" must be a non-negative number or null'),
        ('{"t": 1, "waiting": 1, "running": 1, "ready_replicas": 1.5, "replicas": 1}',
         'obs.jsonl:2: "ready_replicas" must be a non-negative integer'),
        ('{"t": null, "waiting": 1, "running": 1, "ready_replicas": 1, "replicas": 1}',
         'obs.jsonl:2: "t" must be a non-negative number'),
        (line(-5, 0, 0, 1, 1).replace("-5", "5").replace('"t": 5', '"t": 0.5'), 'obs.jsonl:2: "t" goes backwards'),
    ],
)
def test_malformed_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str, problem: str) -> None:
    f, o = write(tmp_path, [line(1, 0, 0, 1, 1), bad])
    assert main(["autoscale", "replay", "-f", f, "--observations", o]) == 2
    err = capsys.readouterr().err
    assert err.strip().endswith(problem) or problem in err, err
    assert err.startswith(str(tmp_path))


@pytest.mark.parametrize(
    ("llm", "problem"),
    [("kind: Service\n", "no LLMDeployment"),
     (LLM.replace("minReplicas: 1", "minReplicas: 9"), "minReplicas must be <= maxReplicas"),
     ("a: [", "llm.yaml")],
)
def test_bad_deployment_file_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], llm: str,
                                    problem: str) -> None:
    f, o = write(tmp_path, [line(0, 0, 0, 1, 1)], llm=llm)
    assert main(["autoscale", "replay", "-f", f, "--observations", o]) == 2
    assert problem in capsys.readouterr().err


def test_missing_observations_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, _ = write(tmp_path, [])
    assert main(["autoscale", "replay", "-f", f, "--observations", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl" in capsys.readouterr().err
