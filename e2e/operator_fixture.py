"""Fixtures that install the CRD and run the real operator (`modelfleet run`) against the local cluster.

- `crd` (session): the generated CRD applied server-side and Established.
- `operator` (session): `modelfleet run` as a subprocess with fast resync/autoscale intervals, its log
  in the cluster's log dir; an OperatorProcess with `metric(name, **labels)` reading its /metrics.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers import Cluster, wait_for

ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = ROOT / "crds" / "llmdeployments.modelfleet.io.yaml"
RESYNC_SECONDS = 5
AUTOSCALE_SECONDS = 3


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class OperatorProcess:
    """The running operator: its process, log file and metrics endpoint."""

    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str
    health_url: str

    def log_tail(self, lines: int = 60) -> str:
        """The end of the operator's log, for failure messages."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when absent)."""
        with urllib.request.urlopen(self.metrics_url, timeout=5) as resp:
            text = resp.read().decode()
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def kube_writes(self) -> float:
        """Write requests the operator has sent to the API server so far."""
        return sum(self.metric("modelfleet_kube_requests_total", verb=v) for v in ("apply", "patch", "create"))


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


@pytest.fixture(scope="session")
def crd(cluster: Cluster) -> Path:
    """The CRD installed and Established."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
    cluster.kubectl("wait", "--for=condition=Established", "crd/llmdeployments.modelfleet.io", "--timeout=60s")
    return CRD_FILE


def start_operator(kubeconfig: str, log: Path, **settings: str) -> OperatorProcess:
    """`modelfleet run` as a subprocess with MODELFLEET_* settings, once its liveness endpoint answers.

    Every operator elects a leader on a Lease; unless `lease_name` is given, each one gets a Lease of its
    own (operators of different tests must not wait for each other). Pass the same `lease_name` to two
    operators to make them compete.
    """
    health, metrics = free_port(), free_port()
    settings.setdefault("lease_name", f"e2e-operator-{health}")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, KUBECONFIG=kubeconfig, **{f"MODELFLEET_{k.upper()}": v for k, v in settings.items()})
    command = [sys.executable, "-m", "modelfleet.cli", "run", "--health-port", str(health)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*command, "--metrics-port", str(metrics)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    handle = OperatorProcess(proc, log, f"http://127.0.0.1:{metrics}/metrics", f"http://127.0.0.1:{health}/healthz")
    try:
        wait_for(
            lambda: proc.poll() is None and _healthy(handle.health_url),
            timeout=60,
            message=f"the operator's liveness endpoint; log:\n{handle.log_tail()}",
        )
    except AssertionError:
        proc.kill()
        raise
    return handle


@pytest.fixture(scope="session")
def operator(cluster: Cluster, crd: Path) -> Iterator[OperatorProcess]:
    """`modelfleet run` against the local cluster, stopped at the end of the session."""
    handle = start_operator(
        cluster.kubeconfig,
        cluster.state_dir / "logs" / "operator-e2e.log",
        # Only the per-test namespaces (`t-*`): tests that run an operator of their own use other names.
        namespaces="t-*",
        prometheus_url=cluster.prometheus_url or "",
        resync_seconds=str(RESYNC_SECONDS),
        autoscale_interval_seconds=str(AUTOSCALE_SECONDS),
        stale_after_seconds="15",
        log_level="info",
    )
    proc = handle.proc
    yield handle
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    if proc.returncode not in (0, -15, None):
        print(f"operator exited {proc.returncode}; log tail:\n{handle.log_tail()}")
