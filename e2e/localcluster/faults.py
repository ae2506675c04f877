"""Fault verbs: stop, start and restart one component of a running cluster, on purpose.

A component comes back with the same command line: the same port, data dir, certificates and
flags, so clients keep their URLs and etcd keeps its data. Deliberately stopped components are
listed in state.json under "stopped" (status shows them; `up` starts them again in place instead
of rebuilding the cluster). Each start records the new pid in state.json at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

from . import cluster, pki, procs, prometheus, state
from .components import Component, Layout, control_plane

# Start order; a component needs the ones before it that it depends on (see components.py).
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "prometheus")
HEALTH_TIMEOUT = {"etcd": 30.0, "kube-apiserver": 90.0}
DEFAULT_HEALTH_TIMEOUT = 60.0
STOP_GRACE = 3.0


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


class FaultError(Exception):
    """The verb cannot be carried out (no cluster, a dependency is stopped, the start failed)."""


def _component(lay: Layout, st: dict[str, Any], name: str) -> Component:
    if name == "prometheus":
        port = st["ports"].get("prometheus")
        if not port:
            raise FaultError("this cluster runs without Prometheus (`e2e/cluster up --with-prometheus` adds it)")
        return prometheus.component(lay, int(port))
    comps = {c.name: c for c in control_plane(lay, pki.Pki(lay.pki_dir), st["ports"])}
    return comps[name]


def _running(st: dict[str, Any], name: str) -> bool:
    pid = st.get("pids", {}).get(name)
    binary = st.get("binaries", {}).get(name)
    return bool(pid and binary and procs.is_ours(int(pid), binary))


def _load(lay: Layout) -> dict[str, Any]:
    st = state.load(lay.state_file)
    if not st or not st.get("complete"):
        raise FaultError(f"no complete cluster in {lay.root}: run `e2e/cluster up` first")
    return st


def _mark(st: dict[str, Any], name: str, stopped: bool) -> None:
    names = set(st.get("stopped", []))
    if stopped:
        names.add(name)
    else:
        names.discard(name)
    st["stopped"] = sorted(names, key=COMPONENTS.index)


def _stop(lay: Layout, st: dict[str, Any], name: str, kill: bool) -> None:
    if name == "prometheus" and not st["ports"].get("prometheus"):
        raise FaultError("this cluster runs without Prometheus (`e2e/cluster up --with-prometheus` adds it)")
    if _running(st, name):
        pid = int(st["pids"][name])
        t0 = time.monotonic()
        if kill:  # a crash: no chance to clean up
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # SIGTERM (a clean stop). The apiserver stops listening at once but its process lingers ~15 s in
        # shutdown hooks, etcd ~7 s: after STOP_GRACE seconds they get SIGKILL (the port is closed by then).
        procs.stop([pid], timeout=STOP_GRACE)
        if procs.alive(pid):
            raise FaultError(f"{name} (pid {pid}) did not stop")
        how = "SIGKILL" if kill else f"SIGTERM, SIGKILL after {STOP_GRACE:g}s"
        log(f"stopped {name} (pid {pid}, {how}) in {time.monotonic() - t0:.1f}s")
    else:
        log(f"{name} was not running")
    _mark(st, name, stopped=True)
    state.save(lay.state_file, st)


def _start(lay: Layout, st: dict[str, Any], name: str) -> None:
    comp = _component(lay, st, name)
    if _running(st, name):
        log(f"{name} is already running (pid {st['pids'][name]})")
        _mark(st, name, stopped=False)
        state.save(lay.state_file, st)
        return
    down = [d for d in comp.depends_on if not _running(st, d)]
    if down:
        raise FaultError(f"{name} needs {', '.join(down)}, which is stopped: `e2e/cluster start {down[0]}` first")
    t0 = time.monotonic()
    starter = cluster.Starter(lay, pki.Pki(lay.pki_dir), st)
    starter.start(comp)
    try:
        starter.wait_healthy([comp], timeout=HEALTH_TIMEOUT.get(name, DEFAULT_HEALTH_TIMEOUT))
    except procs.StartError as e:
        raise FaultError(f"{name} did not come back: {e}\n{procs.tail(lay.log(name))}") from None
    _mark(st, name, stopped=False)
    state.save(lay.state_file, st)
    port = st["ports"].get(name, "")
    log(f"started {name} (pid {st['pids'][name]}, port {port}) healthy in {time.monotonic() - t0:.1f}s")


def run(verb: str, name: str, *, kill: bool = False) -> int:
    """`stop`, `start` or `restart` one component; 0 on success, 1 with the reason on stderr."""
    lay = cluster.layout()
    try:
        with cluster.state_lock(lay):
            st = _load(lay)
            if verb in ("stop", "restart"):
                _stop(lay, st, name, kill)
            if verb in ("start", "restart"):
                _start(lay, st, name)
    except FaultError as e:
        print(f"[cluster] {verb} {name} failed: {e}", file=sys.stderr)
        return 1
    return 0


def start_stopped(lay: Layout, st: dict[str, Any]) -> list[str]:
    """Start, in order, the components `stop` left stopped (called by `up` under the state lock)."""
    started = []
    for name in st.get("stopped", []):
        _start(lay, st, name)
        started.append(name)
    return started
