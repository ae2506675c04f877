"""engines/vllm/cache.py: the download command, its environment, the replicas' offline environment."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from modelfleet.engines.vllm import cache


@pytest.mark.parametrize(
    ("message", "expected"),
    [("bytes=988097824\n", 988097824), ("noise\nbytes=12\n", 12), ("", None), ("bytes=abc", None)],
)
def test_parse_termination(message: str, expected: int | None) -> None:
    assert cache.parse_termination(message) == expected


def test_download_script_keeps_the_repo_out_of_the_shell(tmp_path: Path) -> None:
    # Run the real script with a stand-in `hf` that records its argv: the repo id arrives as one argument
    # even when it holds shell syntax, and the byte count of the cache dir reaches the termination file.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    record = tmp_path / "argv"
    (fake_bin / "hf").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\nprintf 12345 > "$6/blob"\n')
    (fake_bin / "hf").chmod(0o755)
    command, args = cache.download_command("org/name;touch pwned", "main")
    hub = tmp_path / "hub"
    hub.mkdir()
    script = command[2].replace("/dev/termination-log", str(tmp_path / "termination"))
    env = {**os.environ, "PATH": f"{fake_bin}:{os.environ['PATH']}"}
    subprocess.run([*command[:2], script, args[0], args[1], args[2], str(hub)], check=True, env=env, cwd=tmp_path)
    assert record.read_text().splitlines()[:7] == [
        "download", "org/name;touch pwned", "--revision", "main", "--cache-dir", str(hub), "--max-workers"]
    assert not (tmp_path / "pwned").exists()
    # du -sb: the 5-byte blob plus the directory entries' own apparent size.
    done = cache.parse_termination((tmp_path / "termination").read_text())
    assert done is not None and 5 <= done <= 5 + 2 * os.stat(hub).st_size, done


def test_download_env_token_only_from_the_secret() -> None:
    env = {e["name"]: e for e in cache.download_env(("hf", "token"), "/scratch")}
    assert env["HF_TOKEN"] == {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}
    assert env["HF_HUB_CACHE"]["value"] == cache.HUB_DIR and env["HOME"]["value"] == "/scratch"
    assert "HF_TOKEN" not in {e["name"] for e in cache.download_env(None, "/scratch")}


def test_replicas_are_offline_on_the_cache() -> None:
    assert cache.replica_env() == [{"name": "HF_HUB_OFFLINE", "value": "1"},
                                   {"name": "HF_HUB_CACHE", "value": f"{cache.CACHE_MOUNT}/hub"}]
