"""The cached vllm virtualenvs the engine tests run vLLM's own code in (built by `make vllm-venv`).

One subprocess per release judges every command line and regenerates the table
(tests/engines/vllm_judge.py): importing vllm takes seconds, so it is done once per run.
A missing virtualenv is a failure, never a skip, in CI and locally alike: it names the
command that builds it.
"""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
JUDGE = Path(__file__).with_name("vllm_judge.py")
# Cold imports of vllm (and torch) on a busy 2-core machine take about a minute.
JUDGE_TIMEOUT_SECONDS = 900


def venv_dir(version: str) -> Path:
    """Where scripts/vllm_venv.sh puts the virtualenv of a release."""
    cache_root = Path(os.environ.get("MODELFLEET_CACHE") or Path.home() / ".cache" / "modelfleet").expanduser()
    return cache_root / "vllm" / version


def venv_python(version: str) -> Path:
    """The interpreter of a release's virtualenv; fails the test (never skips) when it is missing."""
    d = venv_dir(version)
    if not (d / ".complete").is_file() or not (d / "bin" / "python").exists():
        pytest.fail(
            f"no complete vllm {version} virtualenv at {d}: build it with `make vllm-venv` "
            f"(or `scripts/vllm_venv.sh {version}`; ~8 GB, minutes on a cold pip cache)",
            pytrace=False,
        )
    return d / "bin" / "python"


def _run_judge(version: str, lines: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    request = json.dumps({"lines": [{"id": i, "argv": list(argv)} for i, argv in lines]})
    env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "VLLM_LOGGING_LEVEL": "ERROR"}
    proc = subprocess.run(
        [str(venv_python(version)), str(JUDGE)],
        input=request,
        capture_output=True,
        text=True,
        env=env,
        timeout=JUDGE_TIMEOUT_SECONDS,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"vllm {version} judge failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@cache
def judge(version: str, lines: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    """vLLM `version`'s verdict on each (id, argv): {"table": ..., "results": [...]}; cached per run."""
    return _run_judge(version, lines)
