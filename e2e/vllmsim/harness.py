"""Start and stop vllmsim processes from tests; every wait polls with a deadline."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVER = Path(__file__).with_name("server.py")
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, deadline_s: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200, the process dies, or the deadline passes."""
    end = time.monotonic() + deadline_s
    last = ""
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except (OSError, urllib.error.URLError) as e:
            last = str(e)
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {deadline_s}s ({last})")


@contextmanager
def vllmsim(model: str = "sim", max_num_seqs: int = 4, tokens_per_second: float = 100.0,
            extra: list[str] | None = None, port: int | None = None) -> Iterator[str]:
    """Run one simulator; yields its base URL and kills it afterwards."""
    port = port or free_port()
    cmd = [sys.executable, str(SERVER), "--port", str(port), "--model", model,
           "--max-num-seqs", str(max_num_seqs), "--tokens-per-second", str(tokens_per_second), *(extra or [])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/health", proc=proc)
        yield base
    finally:
        _stop(proc)


def poll(fn: Callable[[], Any], deadline_s: float = 20.0, what: str = "condition") -> Any:
    """Call ``fn`` until it returns something truthy or the deadline passes."""
    end = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what} not met within {deadline_s}s (last: {last!r})")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Prom:
    """A running Prometheus and the file-sd targets file it watches."""

    url: str
    targets_file: Path
    proc: subprocess.Popen[bytes]

    def set_targets(self, groups: list[dict[str, Any]]) -> None:
        """Replace the file-sd target groups atomically (Prometheus re-reads the file)."""
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.targets_file)

    def query(self, q: str) -> list[dict[str, Any]]:
        """Instant query, straight through the HTTP API."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=5) as r:
            return list(json.loads(r.read())["data"]["result"])


def sim_target(base: str, namespace: str, deployment: str, pod: str) -> dict[str, Any]:
    """A file-sd group for one simulator, labelled as the PodMonitor relabels a model pod."""
    return {"targets": [base.removeprefix("http://")],
            "labels": {"namespace": namespace, "modelfleet_io_deployment": deployment, "pod": pod}}


@contextmanager
def prometheus_server(workdir: Path, scrape_interval: str = "1s") -> Iterator[Prom]:
    """Run Debian's /usr/bin/prometheus on a free port with file-based discovery in ``workdir``."""
    targets = workdir / "targets.json"
    targets.write_text("[]")
    (workdir / "prometheus.yml").write_text(
        f"global: {{scrape_interval: {scrape_interval}, evaluation_interval: {scrape_interval}}}\n"
        "scrape_configs:\n"
        "  - job_name: vllm\n"
        "    file_sd_configs: [{files: ['" + str(targets) + "'], refresh_interval: 1s}]\n"
    )
    port = free_port()
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/-/ready", deadline_s=30, proc=proc)
        yield Prom(url, targets, proc)
    finally:
        _stop(proc)
