"""Helpers for the e2e tests: polling with a deadline, the Cluster handle, failure dumps.

    from helpers import wait_for
    pod = wait_for(lambda: ready_pod(ns), timeout=30, message="a Ready pod in " + ns)
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

E2E_DIR = Path(__file__).resolve().parent
CLUSTER_CLI = E2E_DIR / "cluster"


class WaitTimeout(AssertionError):
    """wait_for gave up; the message says what was awaited and what was last seen."""


def wait_for(
    predicate: Callable[[], T], timeout: float = 30.0, interval: float = 0.25, message: str = "condition",
    *, ignore: tuple[type[BaseException], ...] = (Exception,),
) -> T:
    """Call predicate until it returns something truthy and return that; poll every interval seconds.

    Exceptions of the types in `ignore` count as "not yet" (e.g. a 404 before an object exists).
    After timeout seconds raise WaitTimeout (an AssertionError) with message, the last value and
    the last exception.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except ignore as e:
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f"; last value: {last!r}"
            if last_exc is not None:
                detail += f"; last error: {type(last_exc).__name__}: {str(last_exc)[:500]}"
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {message}{detail}")
        time.sleep(interval)


def sample(read: Callable[[], T], seconds: float, interval: float = 0.5) -> list[tuple[float, T]]:
    """Read a value every interval for `seconds` (an observation window, e.g. "replicas stay put");
    returns (elapsed seconds, value) pairs, the first at 0."""
    start = time.monotonic()
    samples: list[tuple[float, T]] = []
    while True:
        elapsed = time.monotonic() - start
        samples.append((round(elapsed, 1), read()))
        if elapsed >= seconds:
            return samples
        time.sleep(interval)


@dataclass
class Cluster:
    """The running local cluster, as the `cluster` fixture hands it to tests."""

    state: dict[str, Any]
    started_here: bool = False
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def kubeconfig(self) -> str:
        return str(self.state["kubeconfig"])

    @property
    def server(self) -> str:
        return str(self.state["server"])

    @property
    def prometheus_url(self) -> str | None:
        return self.state.get("prometheus_url")

    @property
    def targets_dir(self) -> Path:
        return Path(self.state["targets_dir"])

    @property
    def state_dir(self) -> Path:
        return Path(self.state["state_dir"])

    @property
    def logs(self) -> dict[str, str]:
        return dict(self.state["logs"])

    @property
    def nodes(self) -> list[str]:
        from localcluster import nodes

        return [nodes.node_name(i) for i in range(self.state["nodes"])]

    @property
    def gpus_per_node(self) -> int:
        return int(self.state["gpus_per_node"])

    @property
    def kubectl_path(self) -> str:
        return str(self.state["tools"]["kubectl"])

    @property
    def helm_path(self) -> str:
        return str(self.state["tools"]["helm"])

    def _run(self, binary: str, args: tuple[str, ...], check: bool, input: str | None,
             timeout: float) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, KUBECONFIG=self.kubeconfig)
        res = subprocess.run([binary, *args], input=input, capture_output=True, text=True, timeout=timeout, env=env)
        if check and res.returncode != 0:
            raise AssertionError(f"{os.path.basename(binary)} {' '.join(args)} failed (exit {res.returncode}):\n"
                                 f"{res.stderr.strip()}\n{res.stdout.strip()}")
        return res

    def kubectl(self, *args: str, check: bool = True, input: str | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the cached kubectl against this cluster; raises AssertionError on failure if check."""
        return self._run(self.kubectl_path, args, check, input, timeout)

    def helm(self, *args: str, check: bool = True, input: str | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run the cached helm against this cluster."""
        return self._run(self.helm_path, args, check, input, timeout)

    @cached_property
    def kube(self) -> Any:
        """kubernetes.client.ApiClient configured from the kubeconfig."""
        from kubernetes import config as kconfig

        return kconfig.new_client_from_config(config_file=self.kubeconfig)

    @property
    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.kube)

    @property
    def apps(self) -> Any:
        from kubernetes import client

        return client.AppsV1Api(self.kube)

    @property
    def custom(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.kube)

    def dump(self, namespace: str) -> str:
        """What a person needs when a test fails: objects, pod descriptions and Events of the namespace."""
        out = []
        for args in (
            ("get", "all,configmaps,events", "-n", namespace, "-o", "wide"),
            ("describe", "pods", "-n", namespace),
            ("get", "nodes", "-o", "wide"),
        ):
            res = self.kubectl(*args, check=False, timeout=30)
            out.append(f"$ kubectl {' '.join(args)}\n{res.stdout}{res.stderr}")
        return "\n".join(out)
