"""`modelfleet plan`: exit codes, JSON keys, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelfleet.planner import JSON_KEYS
from modelfleet.planner.cli import main

DATA = Path(__file__).parent / "data"

DEPLOYMENTS = """\
apiVersion: modelfleet.io/v1alpha1
kind: LLMDeployment
metadata: {name: llama-8b, namespace: serving}
spec:
  model: {uri: hf://meta-llama/Llama-3.1-8B-Instruct}
  gpu: {count: 1, product: NVIDIA-H100-80GB-HBM3}
  engine: {maxModelLen: 8192}
---
apiVersion: v1
kind: Secret
metadata: {name: ignored}
---
apiVersion: modelfleet.io/v1alpha1
kind: LLMDeployment
metadata: {name: llama-70b}
spec:
  model: {uri: hf://meta-llama/Llama-3.3-70B-Instruct}
  gpu: {count: 1, product: NVIDIA-H100-80GB-HBM3}
"""


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelfleet.planner.cli", "plan", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


def test_json_for_config_file_has_the_issue_keys() -> None:
    result = run_cli(
        "--model-config", str(DATA / "llama_dense_config.json"), "--gpu-memory-gib", "80", "--gpus", "1",
        "--quantization", "none", "--max-model-len", "8192", "--gpu-memory-utilization", "0.9", "-o", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data)[: len(JSON_KEYS)] == list(JSON_KEYS)
    assert data["fits"] is True and data["reasons"] == []
    assert data["kv_cache_bytes_per_token"] == 131072
    assert data["max_concurrent_sequences"] == data["kv_cache_tokens"] // 8192


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "--gpus", "0"], "--gpus"),
        (["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "--gpus", "-1"], "--gpus"),
        (["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "--gpu-memory-utilization", "1.5"],
         "(0, 1]"),
        (["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "--gpu-memory-utilization", "0"], "(0, 1]"),
        (["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "--quantization", "int3"],
         "unknown quantization"),
        (["--model-config", str(DATA / "bert_encoder_config.json"), "--gpu-memory-gib", "80"], "decoder-only"),
        (["--model-config", "/nonexistent/config.json", "--gpu-memory-gib", "80"], "cannot read"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line(args: list[str], needle: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_bad_yaml_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: LLMDeployment\nspec: [unclosed\n")
    result = run_cli("-f", str(bad))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "not valid YAML" in result.stderr


def test_file_from_stdin_gives_a_list_and_exit_1_when_one_does_not_fit() -> None:
    result = run_cli("-f", "-", "-o", "json", stdin=DEPLOYMENTS)
    assert result.returncode == 1, result.stderr
    data = json.loads(result.stdout)
    assert [d["name"] for d in data] == ["llama-8b", "llama-70b"]
    assert [d["fits"] for d in data] == [True, False]
    assert data[1]["suggestion"] == "set gpu.count: 2"
    assert data[1]["namespace"] == "default"


# In-process runs of main() for the rest (no interpreter start-up each time).


def test_single_document_gives_an_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(DEPLOYMENTS.split("---")[0])
    assert main(["plan", "-f", str(path), "-o", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, dict) and data["name"] == "llama-8b" and data["max_model_len_source"] == "spec"


def test_default_output_is_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(DEPLOYMENTS)
    assert main(["plan", "-f", str(path)]) == 1
    out = capsys.readouterr().out
    header, first, second = out.splitlines()[:3]
    assert header.startswith("NAME") and "KV TOKENS" in header
    assert first.startswith("llama-8b") and " yes " in first
    assert second.startswith("llama-70b") and " NO " in second
    assert "llama-70b: weights (131.4 GiB)" in out


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ("kind: LLMDeployment\nmetadata: {name: x}\nspec: {model: {uri: hf://a/b}, gpu: {count: 0}}\n",
         "spec.gpu.count"),
        ("kind: LLMDeployment\nmetadata: {name: x}\n"
         "spec: {model: {uri: hf://a/b}, engine: {gpuMemoryUtilization: 1.2}}\n", "gpuMemoryUtilization"),
        ("kind: LLMDeployment\nmetadata: {name: x}\nspec: {model: {uri: hf://a/b}, quantization: int3}\n",
         "quantization"),
        ("kind: Secret\nmetadata: {name: x}\n", "no LLMDeployment"),
        ("- just\n- a list\n", "not a mapping"),
    ],
)  # fmt: skip
def test_bad_documents_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], document: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(document)
    assert main(["plan", "-f", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


@pytest.mark.parametrize(
    "args",
    [
        ["--gpu-memory-gib", "80"],  # no model
        ["--model", "meta-llama/Llama-3.1-8B"],  # no memory
        ["--model", "meta-llama/Llama-3.1-8B", "--gpu", "NVIDIA-Nope"],
        ["--model", "not/in-catalog", "--gpu-memory-gib", "80"],
        ["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "eighty"],
        ["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "-o", "yaml"],
        ["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "--kv-cache-dtype", "int4"],
        ["--model", "meta-llama/Llama-3.1-8B", "--gpu-memory-gib", "80", "--max-model-len", "0"],
    ],
)
def test_bad_flags_exit_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    assert main(["plan", *args]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_catalog_model_and_gpu_product(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--model", "Qwen/Qwen2.5-72B-Instruct", "--gpu", "NVIDIA-A100-SXM4-80GB", "--gpus", "4",
                 "--max-model-len", "32768", "-o", "json"])  # fmt: skip
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    # 145 GB of BF16 weights leave 2 x 80 GiB short of one 32K sequence: 4 is the smallest TP.
    assert data["fits"] is True and data["min_tensor_parallel_size"] == 4


def test_moe_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--model-config", str(DATA / "mixtral_moe_config.json"), "--gpu", "NVIDIA-H100-80GB-HBM3",
                 "--gpus", "1", "-o", "json"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["fits"] is False
    assert data["suggestion"] == "set gpu.count: 2"


def test_unknown_flag_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["plan", "--bogus"])
    assert exc.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_explain_speaks_vllms_log_and_matches_a_published_one() -> None:
    # llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md, Llama-3.1-8B on an
    # H100 at 0.9: "Desired GPU utilization: 0.9 (71.26 GiB)", "Model loading took 14.99 GiB",
    # peak activation 4.76 GiB, "Available KV cache memory: 51.38 GiB".
    result = run_cli(
        "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "NVIDIA-H100-80GB-HBM3", "--vllm-version", "0.11.0",
        "--max-model-len", "16000", "--explain",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Desired GPU memory utilization is (0.9, 71.26 GiB)" in out
    for term in ("Model loading took", "torch peak memory increase", "non-torch forward increase",
                 "Available KV cache memory:", "GPU KV cache size:"):  # fmt: skip
        assert term in out, out

    def gib_after(term: str) -> float:
        line = next(line for line in out.splitlines() if term in line)
        return float(line.split(term, 1)[1].split("GiB")[0])

    assert abs(gib_after("Model loading took") - 14.99) <= 0.02 * 14.99
    assert 4.76 <= gib_after("torch peak memory increase") <= 4.76 * 1.15
    assert 0.80 * 51.38 <= gib_after("Available KV cache memory:") <= 1.02 * 51.38


def test_json_carries_the_per_gpu_breakdown() -> None:
    result = run_cli(
        "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "NVIDIA-H100-80GB-HBM3", "--vllm-version", "0.11.0",
        "--max-model-len", "16000", "-o", "json",
    )  # fmt: skip
    per_gpu = json.loads(result.stdout)["per_gpu"]
    assert per_gpu["vllm_version"] == "0.11.0"
    assert per_gpu["requested_gib"] == 71.26  # llm-d: "0.9 (71.26 GiB)"
    assert (per_gpu["max_num_batched_tokens"], per_gpu["max_num_seqs"]) == (8192, 1024)  # vLLM's H100 defaults
