"""`modelfleet autoscale simulate`: rows for every autoscaler, exit 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelfleet.autoscaler.cli import main

LLM = """\
apiVersion: modelfleet.io/v1alpha1
kind: LLMDeployment
metadata: {name: llama-8b-l4}
spec:
  model: {uri: hf://meta-llama/Llama-3.1-8B-Instruct}
  gpu: {count: 1, product: NVIDIA-L4}
  engine: {maxModelLen: 8192, maxNumSeqs: 64}
  autoscaling: {enabled: true, minReplicas: 1, maxReplicas: 4}
"""
TOO_BIG = LLM.replace("Llama-3.1-8B-Instruct", "Llama-3.1-70B-Instruct")
KEYS = {"autoscaler", "setting", "p50_ttft_s", "p95_ttft_s", "p99_ttft_s", "replica_hours", "scale_events",
        "requests", "completed"}


def files(tmp_path: Path, trace: str, llm: str = LLM, name: str = "trace.jsonl") -> tuple[str, str]:
    f, t = tmp_path / "llm.yaml", tmp_path / name
    f.write_text(llm)
    t.write_text(trace)
    return str(f), str(t)


def jsonl(n: int, every: float = 2.0) -> str:
    return "".join(json.dumps({"t": i * every, "prompt_tokens": 500, "output_tokens": 50}) + "\n" for i in range(n))


def test_json_rows_for_every_autoscaler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, t = files(tmp_path, jsonl(60))
    assert main(["autoscale", "simulate", "-f", f, "--trace", t, "-o", "json", "--jobs", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["autoscaler"] for r in rows} == {"modelfleet", "hpa", "keda", "static", "oracle"}
    for r in rows:
        assert set(r) >= KEYS, r
        assert r["requests"] == 60 and r["completed"] == 60, r
        # one request every 2 s on an L4: a single replica carries it, and prefill (500 tokens) is
        # the TTFT floor: 500 x 2 x 8.03e9 / (121e12 x 0.5) = 0.13 s
        assert r["p50_ttft_s"] >= 0.13 - 0.005, r
    oracle = next(r for r in rows if r["autoscaler"] == "oracle")
    assert oracle["vs_oracle"] == 1.0 and oracle["replica_hours"] == pytest.approx(118 / 3600, abs=1e-3)


def test_table_and_compare_subset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f, t = files(tmp_path, jsonl(10))
    assert main(["autoscale", "simulate", "-f", f, "--trace", t, "--compare", "static", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "| modelfleet |" in out and "| static |" in out and "| hpa |" not in out


@pytest.mark.parametrize(
    ("args", "trace", "llm", "message"),
    [
        ([], '{"t": 0, "prompt_tokens": 5, "output_tokens": 5}\n{"t": 1, "prompt_tokens": -5, "output_tokens": 5}\n',
         LLM, 'trace.jsonl:2: "prompt_tokens" must be a whole number >= 1, got -5'),
        ([], jsonl(3), TOO_BIG, "does not fit its GPUs: weights"),
        ([], jsonl(3), LLM.replace("NVIDIA-L4", "NVIDIA-T1000"), "GPU memory unknown"),
        (["--compare", "hpa,vpa"], jsonl(3), LLM, "--compare: unknown autoscaler(s) vpa"),
        (["--time-scale", "0"], jsonl(3), LLM, "--time-scale must be a positive number"),
        ([], '{"t": 0, "prompt_tokens": 9000, "output_tokens": 5}\n', LLM,
         "has 9005 prompt + output tokens, more than maxModelLen (8192)"),
        ([], jsonl(3), "kind: ConfigMap\n", "no LLMDeployment (kind: LLMDeployment) in the file"),
    ],
)
def test_bad_input_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                           trace: str, llm: str, message: str) -> None:
    f, t = files(tmp_path, trace, llm)
    assert main(["autoscale", "simulate", "-f", f, "--trace", t, *args]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == "", captured.err
