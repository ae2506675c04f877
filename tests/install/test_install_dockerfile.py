"""Properties of the operator image, read from the Dockerfile (there is no Docker engine here).

What must hold: multi-stage; both stages on a slim CPython 3.11 pinned by tag and digest; the
final stage installs the wheel built in the builder (no index, no source tree) and has no
compiler; it runs as a numeric non-root user; it works on a read-only root filesystem; its
entrypoint is `modelfleet run`, which the package declares.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?@sha256:[0-9a-f]{64}$")
COMPILERS = ("gcc", "g++", "clang", "cc ", "build-essential", "make", "cargo", "rustc", "-dev ")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse(text: str) -> list[Stage]:
    """Dockerfile -> stages with (INSTRUCTION, arguments); comments dropped, continuations joined."""
    logical, buf = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


STAGES = parse(DOCKERFILE.read_text())
FINAL = STAGES[-1]


def env(stage: Stage) -> dict[str, str]:
    out: dict[str, str] = {}
    for arg in stage.args("ENV"):
        for item in shlex.split(arg):
            key, _, value = item.partition("=")
            out[key] = value
    return out


def test_multi_stage_with_named_builder() -> None:
    assert len(STAGES) >= 2, f"expected a builder and a final stage, found {len(STAGES)} FROM lines"
    assert STAGES[0].name, "the builder stage needs a name (FROM ... AS builder) so the final stage can use it"


@pytest.mark.parametrize("index", range(len(STAGES)), ids=lambda i: f"stage{i}")
def test_base_is_pinned_slim_python_311(index: int) -> None:
    base = STAGES[index].base
    assert PINNED_BASE.match(base), f"stage {index} base {base!r} is not python:3.11.N-slim pinned by @sha256 digest"


def test_final_stage_installs_only_the_builders_wheels() -> None:
    runs = " ".join(FINAL.args("RUN"))
    assert "pip install" in runs, "the final stage must pip install the wheel"
    assert "--no-index" in runs, "the final stage must not reach PyPI: install with --no-index from the wheels"
    assert f"from={STAGES[0].name}" in runs or any(f"--from={STAGES[0].name}" in c for c in FINAL.args("COPY")), \
        "the final stage must take its wheels from the builder stage"
    copies = FINAL.args("COPY")
    assert not any(re.search(r"(^|\s)(\.|operator|pyproject\.toml)(\s|$)", c) for c in copies), \
        f"the final stage copies the source tree: {copies}"


@pytest.mark.parametrize("tool", COMPILERS)
def test_no_compiler_in_final_stage(tool: str) -> None:
    for run in FINAL.args("RUN"):
        if "apt-get install" in run or "apk add" in run:
            assert tool not in run + " ", f"final stage installs {tool.strip()!r}: {run}"


def test_runs_as_numeric_non_root_user() -> None:
    users = FINAL.args("USER")
    assert users, "the final stage has no USER: it would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {users[-1]!r}: must be a numeric non-root UID (runAsNonRoot)"
    assert int(uid) == 65532, f"USER {uid}: the chart sets runAsUser 65532; keep them equal"
    assert not gid or gid.isdigit(), f"USER {users[-1]!r}: group must be numeric too"


@pytest.mark.parametrize(("name", "value"), [("PYTHONDONTWRITEBYTECODE", "1"), ("PYTHONUNBUFFERED", "1")])
def test_read_only_root_filesystem_settings(name: str, value: str) -> None:
    assert env(FINAL).get(name) == value, f"final stage should set {name}={value} (read-only root fs, logs)"


def test_home_is_writable_tmp() -> None:
    assert env(FINAL).get("HOME") == "/tmp", "HOME must point at /tmp (the chart's emptyDir) on a read-only root"


def test_entrypoint_is_modelfleet_run_in_exec_form() -> None:
    entry = FINAL.args("ENTRYPOINT")
    assert entry, "the final stage has no ENTRYPOINT"
    assert json.loads(entry[-1]) == ["modelfleet", "run"], f"ENTRYPOINT {entry[-1]} (exec form needed for signals)"


def test_pyproject_declares_the_modelfleet_console_script() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    target = project.get("scripts", {}).get("modelfleet")
    assert target == "modelfleet.cli:main", f"[project.scripts] modelfleet = {target!r}"


def test_modelfleet_run_subcommand_exists() -> None:
    """The ENTRYPOINT's command, as the installed package provides it."""
    res = subprocess.run([sys.executable, "-c", "from modelfleet.cli import main; main()", "run", "--help"],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, (
        f"`modelfleet run --help` exited {res.returncode}: the image's ENTRYPOINT would fail\n"
        f"stdout: {res.stdout[-1500:]}\nstderr: {res.stderr[-1500:]}")


@pytest.mark.parametrize("needed", ["pyproject.toml", "operator/modelfleet/__init__.py"])
def test_build_context_keeps_what_the_builder_copies(needed: str) -> None:
    ignored = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")]
    assert not any(needed == pat or needed.startswith(pat.rstrip("/") + "/") for pat in ignored), \
        f".dockerignore excludes {needed}, which the builder stage copies"
    assert ".venv" in ignored and ".git" in ignored, ".dockerignore must keep .git and .venv out of the context"
