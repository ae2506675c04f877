"""What the fault-injection suite (e2e/faults/) shares.

- :func:`fault_cluster`: ONE private cluster for every fault module of the session
  (``<MODELFLEET_CLUSTER_DIR>-faults``, 4 nodes x 20 GPUs), brought down when the session ends. The
  faults restart etcd and the apiserver and stop Prometheus, so they never run on the shared cluster.
- :class:`Operators`: ``modelfleet run`` processes with fast loops (resync 2 s, autoscale 2 s), each
  with its own health/metrics ports and log; all killed at the end of the test, logs printed on failure.
- :func:`record` / :func:`print_figures`: the per-fault figures (injections, time to converge
  median/max, objects lost/duplicated, failover gap), printed by each test and once more as a table
  at the end of the session (run with ``-s`` to see them).
- :class:`FakeVllmMetrics`: a NAMED FAKE of a vLLM pod's ``/metrics`` (values the test sets, ``+Inf``
  included), scraped by the real Prometheus; :class:`ExporterFleet` keeps one per Running pod of an
  LLMDeployment, listed in Prometheus' file-SD targets exactly as the vllmsim harness does.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from helpers import wait_for
from operator_fixture import CRD_FILE, OperatorProcess, start_operator
from private_cluster import PrivateCluster, private_cluster
from test_operator import GROUP, SMALL, VERSION, condition  # SMALL: Qwen2.5-0.5B, fits anything
from test_operator import get_llm as llm

LABEL = "modelfleet.io/deployment"
RESYNC = 2  # MODELFLEET_RESYNC_SECONDS of every operator the suite starts
AUTOSCALE = 2  # MODELFLEET_AUTOSCALE_INTERVAL_SECONDS

_CLUSTER: dict[str, PrivateCluster] = {}


def fault_cluster(config: pytest.Config) -> PrivateCluster:
    """The suite's private cluster, started on first use, brought down at the end of the session."""
    if "c" not in _CLUSTER:
        stack = ExitStack()
        pc = stack.enter_context(private_cluster("faults", "--nodes", "4", "--gpus-per-node", "20"))
        config.add_cleanup(stack.close)
        config.add_cleanup(print_figures)
        pc.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_FILE))
        pc.kubectl("wait", "--for=condition=Established", "crd/llmdeployments.modelfleet.io", "--timeout=60s")
        _CLUSTER["c"] = pc
    return _CLUSTER["c"]


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    fault: str
    injected: int
    converge: list[float] = field(default_factory=list)
    lost: int = 0
    duplicated: int = 0
    notes: str = ""

    def line(self) -> str:
        conv = (f"converge median {statistics.median(self.converge):.1f} s max {max(self.converge):.1f} s "
                f"(n={len(self.converge)})" if self.converge else "converge n/a")
        return (f"FAULT {self.fault}: injected {self.injected}; {conv}; lost {self.lost}; "
                f"duplicated {self.duplicated}" + (f"; {self.notes}" if self.notes else ""))


FIGURES: list[Figure] = []


def record(fig: Figure) -> Figure:
    """Keep a fault's figures for the session table and print them now."""
    FIGURES.append(fig)
    print("\n" + fig.line(), flush=True)
    return fig


def print_figures() -> None:
    if FIGURES:
        print("\n===== fault-injection figures =====\n" + "\n".join(f.line() for f in FIGURES), flush=True)


# --------------------------------------------------------------------------- operators


def healthz(op: OperatorProcess) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body or {}) of the operator's /healthz; (0, {}) when it does not answer."""
    try:
        with urllib.request.urlopen(op.health_url, timeout=2) as resp:
            return resp.status, _json(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, _json(e.read())
    except OSError:
        return 0, {}


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Operators:
    """Start `modelfleet run` processes for one test; kill them all at its end."""

    def __init__(self, pc: PrivateCluster, test: str) -> None:
        self.pc, self.test = pc, test
        self.started: list[tuple[str, OperatorProcess]] = []

    def start(self, name: str, *, kubeconfig: str | None = None, **settings: str) -> OperatorProcess:
        """One operator watching the suite's namespaces (`f-*`); settings override the defaults."""
        base = {
            "namespaces": "f-*",
            "prometheus_url": self.pc.prometheus_url or "",
            "resync_seconds": str(RESYNC),
            "autoscale_interval_seconds": str(AUTOSCALE),
            "stale_after_seconds": "10",
            "api_connect_timeout_seconds": "2",
            "api_read_timeout_seconds": "5",
            "lease_name": f"mf-{self.test}"[:63],
            "identity": name,
            "log_level": "info",
        }
        base.update(settings)
        log = self.pc.state_dir / "logs" / f"operator-{self.test}-{name}-{len(self.started)}.log"
        op = start_operator(kubeconfig or self.pc.kubeconfig, log, **base)
        self.started.append((name, op))
        return op

    def kill(self, op: OperatorProcess) -> float:
        """SIGKILL (no clean-up, no lease release); returns the monotonic time of the kill."""
        t = time.monotonic()
        op.proc.kill()
        op.proc.wait(timeout=10)
        return t

    def close(self) -> None:
        for _, op in self.started:
            if op.proc.poll() is None:
                op.proc.kill()
                op.proc.wait(timeout=10)

    def tails(self, lines: int = 60) -> str:
        return "\n".join(f"----- operator {name} (pid {op.proc.pid}, exit {op.proc.returncode}) log "
                         f"{op.log}:\n{op.log_tail(lines)}" for name, op in self.started[-4:])


# --------------------------------------------------------------------------- cluster reads


def children(pc: PrivateCluster, ns: str) -> dict[str, dict[str, list[Any]]]:
    """LLMDeployment name -> {"deployments": [...], "services": [...]} by the modelfleet label."""
    out: dict[str, dict[str, list[Any]]] = {}
    for dep in pc.apps.list_namespaced_deployment(ns, label_selector=LABEL).items:
        out.setdefault(dep.metadata.labels[LABEL], {"deployments": [], "services": []})["deployments"].append(dep)
    for svc in pc.core.list_namespaced_service(ns, label_selector=LABEL).items:
        out.setdefault(svc.metadata.labels[LABEL], {"deployments": [], "services": []})["services"].append(svc)
    return out


def lease_holder(pc: PrivateCluster, namespace: str, name: str) -> str | None:
    """spec.holderIdentity of a coordination.k8s.io Lease (None when absent)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        lease = client.CoordinationV1Api(pc.kube).read_namespaced_lease(name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return lease.spec.holder_identity


_NAMESPACES: list[str] = []  # made by the running test; the `ops` fixture deletes them (dumps on failure)


def make_namespace(pc: PrivateCluster, base: str, labels: dict[str, str] | None = None) -> str:
    """A fresh `f-<base>-<hex>` namespace (the suite's operators watch `f-*`), deleted after the test."""
    name = f"f-{base[:40]}-{os.urandom(3).hex()}"
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    pc.kubectl("apply", "-f", "-", input=json.dumps(body))
    _NAMESPACES.append(name)
    return name


# --------------------------------------------------------------------------- fake vLLM metrics


class FakeVllmMetrics:
    """NAMED FAKE: a vLLM pod's /metrics with values the test sets (vLLM's published metric names).

    Only for what a simulator cannot be made to say on demand: a queue of exactly N, or +Inf.
    The real Prometheus scrapes it; the operator only ever talks to Prometheus.
    """

    def __init__(self, model: str, waiting: float, running: float, kv: float | None = None) -> None:
        self.model = model
        self.values: dict[str, float | None] = {"waiting": waiting, "running": running, "kv": kv}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = fake.text().encode()
                self.send_response(200 if self.path.startswith("/metrics") else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Scrapes every 2 s are not worth a line."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def text(self) -> str:
        v, label = self.values, f'{{model_name="{self.model}"}}'

        def fmt(x: float) -> str:  # the exposition format's spellings
            return "NaN" if math.isnan(x) else "+Inf" if x == math.inf else "-Inf" if x == -math.inf else repr(float(x))

        lines = []
        for key, metric in (("waiting", "vllm:num_requests_waiting"), ("running", "vllm:num_requests_running"),
                            ("kv", "vllm:kv_cache_usage_perc")):
            if v[key] is not None:  # kv None: not exported (as an older vLLM without that gauge)
                lines += [f"# TYPE {metric} gauge", f"{metric}{label} {fmt(float(v[key]))}"]
        return "\n".join(lines) + "\n"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ExporterFleet:
    """One FakeVllmMetrics per Running pod of an LLMDeployment, listed for Prometheus' file SD."""

    def __init__(self, pc: PrivateCluster, ns: str, name: str, **values: float | None) -> None:
        self.pc, self.ns, self.name = pc, ns, name
        self.values = dict(values)
        self.fakes: dict[str, FakeVllmMetrics] = {}
        self.target_file = pc.targets_dir / f"{ns}-{name}.json"
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.errors: list[str] = []

    def set(self, **values: float | None) -> None:
        """New values for every pod (now and future ones)."""
        with self._lock:
            self.values.update(values)
            for f in self.fakes.values():
                f.values.update(values)

    def __enter__(self) -> ExporterFleet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.target_file.unlink(missing_ok=True)
        for f in self.fakes.values():
            f.close()

    def pods(self) -> list[str]:
        with self._lock:
            return sorted(self.fakes)

    def _run(self) -> None:
        written: list[str] | None = None
        while not self._stop.is_set():
            try:
                pods = self.pc.core.list_namespaced_pod(self.ns, label_selector=f"{LABEL}={self.name}").items
                running = {p.metadata.name for p in pods
                           if p.status and p.status.phase == "Running" and not p.metadata.deletion_timestamp}
                with self._lock:
                    for pod in set(self.fakes) - running:
                        self.fakes.pop(pod).close()
                    for pod in running - set(self.fakes):
                        f = FakeVllmMetrics(self.name, **self.values)
                        self.fakes[pod] = f
                    groups = [{"targets": [f"127.0.0.1:{f.port}"],
                               "labels": {"namespace": self.ns, "modelfleet_io_deployment": self.name, "pod": pod}}
                              for pod, f in sorted(self.fakes.items())]
                key = [json.dumps(g, sort_keys=True) for g in groups]
                if key != written:
                    tmp = self.target_file.with_suffix(".tmp")
                    tmp.write_text(json.dumps(groups))
                    os.replace(tmp, self.target_file)
                    written = key
            except Exception as e:  # the API server blinking must not stop the mirror
                self.errors.append(f"{type(e).__name__}: {e}")
            self._stop.wait(0.3)


def proxied_kubeconfig(pc: PrivateCluster, port: int, path: Path) -> str:
    """A copy of the admin kubeconfig whose server is 127.0.0.1:port (TLS passes through the proxy)."""
    doc = json.loads(Path(pc.kubeconfig).read_text())
    for c in doc["clusters"]:
        c["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    return str(path)


def wait_rounds(op: OperatorProcess, rounds: int, timeout: float) -> float:
    """Wait until the operator's resync counter rose by `rounds`; returns the new value."""
    start = op.metric("modelfleet_resync_rounds_total")
    value: float = wait_for(lambda: (v := op.metric("modelfleet_resync_rounds_total")) >= start + rounds and v,
                            timeout=timeout, message=f"{rounds} more resync rounds (from {start:g})")
    return value


# --------------------------------------------------------------------------- LLMDeployments

def llm_body(name: str, replicas: int = 1, max_model_len: int = 8192, gpus: int = 1,
             **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "LLMDeployment", "metadata": {"name": name},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "architecture": SMALL},
            "gpu": {"count": gpus, "product": "NVIDIA-H100-80GB-HBM3"},
            "engine": {"maxModelLen": max_model_len},
            "replicas": replicas,
            **spec,
        },
    }


def apply(pc: PrivateCluster, ns: str, *bodies: dict[str, Any]) -> None:
    """kubectl apply of LLMDeployments (one call)."""
    doc = {"apiVersion": "v1", "kind": "List", "items": list(bodies)}
    pc.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc))


@dataclass
class Intended:
    """What one LLMDeployment should have once converged."""

    replicas: int
    max_model_len: int | None = None


def problems(pc: PrivateCluster, ns: str, intended: dict[str, Intended]) -> list[str]:
    """Everything that differs from `intended` (empty: converged): one Deployment and one Service per
    LLMDeployment, owned by it, with the intended replicas and --max-model-len; status Ready at the
    current generation with every replica ready; no child of an LLMDeployment that is not there."""
    out: list[str] = []
    kids = children(pc, ns)
    for name in sorted(set(kids) - set(intended)):
        out.append(f"orphan children of {name}: {[d.metadata.name for d in kids[name]['deployments']]} "
                   f"{[s.metadata.name for s in kids[name]['services']]}")
    for name, want in sorted(intended.items()):
        try:
            obj = llm(pc, ns, name)
        except Exception as e:
            out.append(f"{name}: cannot read ({type(e).__name__})")
            continue
        uid = obj["metadata"]["uid"]
        k = kids.get(name, {"deployments": [], "services": []})
        for kind in ("deployments", "services"):
            if len(k[kind]) != 1:
                out.append(f"{name}: {len(k[kind])} {kind}")
            for o in k[kind]:
                owners = [r.uid for r in o.metadata.owner_references or []]
                if owners != [uid]:
                    out.append(f"{name}: {kind[:-1]} {o.metadata.name} owned by {owners}, not {uid}")
        for dep in k["deployments"]:
            if dep.spec.replicas != want.replicas:
                out.append(f"{name}: Deployment replicas {dep.spec.replicas} != {want.replicas}")
            args = dep.spec.template.spec.containers[0].args or []
            mml = args[args.index("--max-model-len") + 1] if "--max-model-len" in args else None
            if want.max_model_len is not None and mml != str(want.max_model_len):
                out.append(f"{name}: args {args} lack --max-model-len {want.max_model_len}")
        st = obj.get("status") or {}
        if st.get("observedGeneration") != obj["metadata"]["generation"]:
            out.append(f"{name}: observedGeneration {st.get('observedGeneration')} != {obj['metadata']['generation']}")
        if condition(obj, "Ready").get("status") != "True" or st.get("readyReplicas") != want.replicas:
            out.append(f"{name}: Ready={condition(obj, 'Ready').get('status')} readyReplicas "
                       f"{st.get('readyReplicas')} (want {want.replicas})")
    return out


def wait_converged(pc: PrivateCluster, ns: str, intended: dict[str, Intended], timeout: float,
                   context: str = "") -> float:
    """Poll problems() until empty; returns the seconds it took. On timeout the last problems."""
    t0 = time.monotonic()
    last: list[str] = []

    def check() -> bool:
        nonlocal last
        last = problems(pc, ns, intended)
        return not last

    try:
        wait_for(check, timeout=timeout, interval=0.3, message=f"{len(intended)} LLMDeployments converged")
    except AssertionError as e:
        raise AssertionError(f"{e}\nstill wrong:\n  " + "\n  ".join(last[:30]) + f"\n{context}") from None
    return time.monotonic() - t0


def count_lost_duplicated(pc: PrivateCluster, ns: str, names: list[str]) -> tuple[int, int]:
    """(children missing, children beyond one) over Deployments and Services of `names`."""
    kids = children(pc, ns)
    lost = dup = 0
    for name in names:
        for kind in ("deployments", "services"):
            n = len(kids.get(name, {}).get(kind, []))
            lost += n == 0
            dup += max(0, n - 1)
    return lost, dup


class Watch:
    """Read a value every `interval` seconds in a thread (e.g. a Deployment's replicas through a fault);
    `values` are (monotonic time, value) pairs. Read errors are kept in `errors`, never raised."""

    def __init__(self, read: Any, interval: float = 0.25) -> None:
        self.read, self.interval = read, interval
        self.values: list[tuple[float, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.values.append((time.monotonic(), self.read()))
            except Exception as e:
                self.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
            self._stop.wait(self.interval)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def seen(self) -> set[Any]:
        return {v for _, v in self.values}
