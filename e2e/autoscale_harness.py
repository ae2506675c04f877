"""Closed-loop autoscaling harness: one vllmsim per Running pod, file-SD targets, a load generator.

    with SimFleet(cluster, ns, "qwen", max_num_seqs=2, tokens_per_second=10) as fleet, \
         Load(fleet, clients=12, seconds=60) as load:
        ...

- :class:`SimFleet` polls the LLMDeployment's pods (label ``modelfleet.io/deployment=<name>``) every
  ``poll`` seconds. For each Running, non-terminating pod it starts one ``e2e/vllmsim/server.py`` on a
  free loopback port; once the simulator answers ``/health`` it is listed in
  ``<targets_dir>/<ns>-<name>.json`` (Prometheus file SD) with the labels the operator's query groups
  by: ``namespace``, ``modelfleet_io_deployment``, ``pod``. When the pod goes (deleted, terminating,
  not Running) its target is removed first and then its simulator is stopped. KWOK pods are fakes:
  nothing listens on their podIP, so the simulators stand in for them.
- :class:`Load`: ``clients`` threads, each sending one completion at a time (closed loop) to the
  current simulators, round-robin, until ``seconds`` pass, ``max_requests`` are sent or ``stop()``.
  Loopback only.
- :func:`restart_prometheus` / :func:`prometheus_stopped`: take the cluster's Prometheus away and
  bring it back on the SAME port (the operator was started with its URL).
- :func:`prom_query`: an instant PromQL query against the cluster's Prometheus.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers import Cluster, wait_for
from operator_fixture import free_port

SIM_SERVER = Path(__file__).resolve().parent / "vllmsim" / "server.py"


# --------------------------------------------------------------------------- Prometheus


def prom_query(url: str, query: str, timeout: float = 3.0) -> list[dict[str, Any]]:
    """``data.result`` of an instant query; raises OSError/ValueError when Prometheus cannot answer."""
    full = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(full, timeout=timeout) as resp:
        body = json.loads(resp.read().decode())
    if body.get("status") != "success":
        raise ValueError(f"Prometheus: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def selector(namespace: str, name: str) -> str:
    """The label matchers of one LLMDeployment's simulator series."""
    return f'{{namespace="{namespace}",modelfleet_io_deployment="{name}"}}'


def prom_value(url: str, query: str) -> float | None:
    """The single value of a query that aggregates to one series (None: no series)."""
    res = prom_query(url, query)
    return float(res[0]["value"][1]) if res else None


def _prometheus_pid(st: dict[str, Any]) -> int | None:
    from localcluster import procs

    pid = st.get("pids", {}).get("prometheus")
    binary = st.get("binaries", {}).get("prometheus")
    return int(pid) if pid and binary and procs.is_ours(pid, binary) else None


def restart_prometheus() -> None:
    """Start the cluster's Prometheus again if it is not running, on the port it had before.

    Called with the cluster's state lock held (see prometheus_stopped), so not through `e2e/cluster up`.
    """
    from localcluster import cluster as lc
    from localcluster import pki, state

    lay = lc.layout()
    st = state.load(lay.state_file)
    assert st, f"no cluster state in {lay.state_file}"
    if not lc.prometheus_running(st):
        lc.start_prometheus(lay, st, pki.Pki(lay.pki_dir))


@contextmanager
def prometheus_stopped(cluster: Cluster) -> Iterator[int]:
    """SIGTERM the cluster's Prometheus; restart it on leaving, also when the body fails.

    Holds the cluster's state lock meanwhile, so that a concurrent `e2e/cluster up` (another pytest
    session) waits instead of seeing a dead component and rebuilding the cluster.
    """
    from localcluster import cluster as lc
    from localcluster import procs, state

    lay = lc.layout()
    with lc.state_lock(lay):
        st = state.load(lay.state_file) or {}
        pid = _prometheus_pid(st)
        assert pid is not None, f"no running Prometheus recorded in {lay.state_file}: {st.get('pids')}"
        try:
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not procs.alive(pid), timeout=15, interval=0.1, message=f"Prometheus pid {pid} to exit")
            yield pid
        finally:
            restart_prometheus()
    wait_for(lambda: prom_query(str(cluster.prometheus_url), "up") is not None, timeout=30,
             message="Prometheus answering queries again")


# --------------------------------------------------------------------------- simulators


@dataclass
class Sim:
    """One simulator standing in for one pod."""

    pod: str
    port: int
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    healthy: bool = False

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=0.5) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _pod_running(pod: Any) -> bool:
    return bool(pod.status and pod.status.phase == "Running" and not pod.metadata.deletion_timestamp)


class SimFleet:
    """Mirror an LLMDeployment's Running pods as vllmsim processes + Prometheus file-SD targets."""

    def __init__(self, cluster: Cluster, namespace: str, name: str, *, max_num_seqs: int = 2,
                 tokens_per_second: float = 10.0, poll: float = 0.3) -> None:
        self.cluster, self.namespace, self.name = cluster, namespace, name
        self.max_num_seqs, self.tokens_per_second, self.poll = max_num_seqs, tokens_per_second, poll
        self.target_file = cluster.targets_dir / f"{namespace}-{name}.json"
        self.sims: dict[str, Sim] = {}
        self.log: list[tuple[float, str, str]] = []  # (monotonic time, "start"|"ready"|"stop", pod)
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"simfleet-{name}", daemon=True)
        self._rr = itertools.count()
        self._written: list[str] | None = None

    # -- public
    def __enter__(self) -> SimFleet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop watching, remove the target file, stop every simulator."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.target_file.unlink(missing_ok=True)
        with self._lock:
            sims, self.sims = list(self.sims.values()), {}
        for sim in sims:
            sim.stop()

    def urls(self) -> list[str]:
        """Base URLs of the healthy simulators (the ones listed as targets)."""
        with self._lock:
            return [s.url for s in self.sims.values() if s.healthy]

    def next_url(self) -> str | None:
        """Round-robin over the healthy simulators."""
        urls = self.urls()
        return urls[next(self._rr) % len(urls)] if urls else None

    def pods(self) -> list[str]:
        """Pods that have a healthy simulator."""
        with self._lock:
            return sorted(p for p, s in self.sims.items() if s.healthy)

    def wait_sims(self, n: int, timeout: float = 30) -> None:
        """Wait until exactly n simulators are healthy and listed."""
        wait_for(lambda: len(self.pods()) == n, timeout=timeout, interval=0.1,
                 message=f"{n} healthy simulators for {self.namespace}/{self.name} (have {self.pods()}, "
                         f"errors {self.errors[-3:]})")

    def wait_scraped(self, n: int, timeout: float = 30) -> None:
        """Wait until Prometheus has a fresh waiting series for exactly n of our pods."""
        url = str(self.cluster.prometheus_url)
        q = f"count(vllm:num_requests_waiting{selector(self.namespace, self.name)})"
        wait_for(lambda: prom_value(url, q) == n, timeout=timeout, interval=0.2,
                 message=f"Prometheus scraping {n} simulators of {self.namespace}/{self.name}")

    # -- the watcher
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._sync()
            except Exception as e:  # the API server blinking must not kill the harness
                self.errors.append(f"{type(e).__name__}: {e}")
            self._stop.wait(self.poll)

    def _sync(self) -> None:
        pods = self.cluster.core.list_namespaced_pod(
            self.namespace, label_selector=f"modelfleet.io/deployment={self.name}").items
        running = {p.metadata.name for p in pods if _pod_running(p)}
        with self._lock:
            gone = [s for pod, s in self.sims.items() if pod not in running]
            for s in gone:
                del self.sims[s.pod]
            new = sorted(running - set(self.sims))
        if gone:
            self._write_targets()  # Prometheus forgets the target before its simulator stops
            for s in gone:
                s.stop()
                self.log.append((time.monotonic(), "stop", s.pod))
        for pod in new:
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, str(SIM_SERVER), "--port", str(port), "--model", self.name,
                 "--max-num-seqs", str(self.max_num_seqs), "--tokens-per-second", str(self.tokens_per_second)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            with self._lock:
                self.sims[pod] = Sim(pod, port, proc)
            self.log.append((time.monotonic(), "start", pod))
        # Poll the starting ones quickly, so a new pod gets traffic and a target without an extra cycle.
        deadline = time.monotonic() + 3.0
        while not self._stop.is_set():
            with self._lock:
                pending = [s for s in self.sims.values() if not s.healthy]
            if not pending:
                break
            changed = False
            for s in pending:
                if s.proc.poll() is not None:
                    self.errors.append(f"vllmsim for {s.pod} exited {s.proc.returncode}")
                    with self._lock:
                        self.sims.pop(s.pod, None)
                elif _healthy(s.url):
                    s.healthy = changed = True
                    self.log.append((time.monotonic(), "ready", s.pod))
            if changed:
                self._write_targets()
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self._write_targets()

    def _write_targets(self) -> None:
        with self._lock:
            sims = sorted((s for s in self.sims.values() if s.healthy), key=lambda s: s.pod)
        key = [f"{s.pod}={s.address}" for s in sims]
        if key == self._written:
            return
        groups = [{"targets": [s.address],
                   "labels": {"namespace": self.namespace, "modelfleet_io_deployment": self.name, "pod": s.pod}}
                  for s in sims]
        tmp = self.target_file.with_suffix(".tmp")  # not *.json: Prometheus must never read it half-written
        tmp.write_text(json.dumps(groups, indent=1))
        os.replace(tmp, self.target_file)
        self._written = key


# --------------------------------------------------------------------------- load


class Load:
    """``clients`` closed-loop clients sending completions round-robin to the fleet's simulators."""

    def __init__(self, fleet: SimFleet, clients: int, seconds: float, *, max_tokens: int = 10,
                 max_requests: int | None = None, request_timeout: float = 60.0) -> None:
        self.fleet, self.clients, self.seconds = fleet, clients, seconds
        self.max_tokens, self.max_requests, self.request_timeout = max_tokens, max_requests, request_timeout
        self.ok = 0
        self.failed = 0
        self.last_error = ""
        self._sent = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, name=f"load-{i}", daemon=True)
                         for i in range(clients)]
        self.started = 0.0

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.join()

    def stop(self) -> None:
        """No new requests; the ones in flight finish (the queues drain as in vLLM)."""
        self._stop.set()

    def join(self, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        for t in self._threads:
            t.join(timeout=max(0.0, end - time.monotonic()))

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def _client(self) -> None:
        deadline = self.started + self.seconds
        body = json.dumps({"model": self.fleet.name, "prompt": "hello", "max_tokens": self.max_tokens}).encode()
        while not self._stop.is_set() and time.monotonic() < deadline:
            if self.max_requests is not None and next(self._sent) >= self.max_requests:
                return
            url = self.fleet.next_url()
            if url is None:
                self._stop.wait(0.1)
                continue
            req = urllib.request.Request(url + "/v1/completions", data=body,
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.request_timeout) as resp:
                    resp.read()
                with self._lock:
                    self.ok += 1
            except (OSError, urllib.error.URLError) as e:  # a simulator stopped under us (pod removed)
                with self._lock:
                    self.failed += 1
                    self.last_error = f"{url}: {e}"
                self._stop.wait(0.05)
