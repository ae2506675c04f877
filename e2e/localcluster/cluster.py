"""up / down / status / env of the local cluster."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import argocd, build, config, keda, kubeconfig, nodes, pki, procs, prometheus, state
from .components import PORT_NAMES, Component, Layout, control_plane
from .procs import StartError

STOP_ORDER = [*keda.NAMES, "prometheus", "kwok", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"]
# Add-ons: their death is repaired by `up --with-...`, not by rebuilding the cluster; stopped first.
ADDONS = ("prometheus", *argocd.COMPONENTS, *keda.NAMES)


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def layout() -> Layout:
    return Layout(config.state_dir())


@contextmanager
def state_lock(lay: Layout) -> Iterator[None]:
    """One up/down at a time per state dir (parallel pytest sessions, CI steps)."""
    lay.root.parent.mkdir(parents=True, exist_ok=True)
    with open(lay.root.parent / f".{lay.root.name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


class Api:
    """Minimal client of the apiserver with the admin certificate (stdlib only)."""

    def __init__(self, server: str, p: pki.Pki) -> None:
        self.server, self.pki = server, p

    def get(self, path: str) -> tuple[int, Any]:
        status, body = procs.https_get(self.server + path, ca=self.pki.ca_crt,
                                       cert=(self.pki.crt("admin"), self.pki.key("admin")))
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body


def _healthy(c: Component, p: pki.Pki) -> bool:
    assert c.health_url
    cert = (p.crt("admin"), p.key("admin")) if c.health_needs_client_cert else None
    ca = p.ca_crt if c.health_needs_client_cert else None
    status, _ = procs.https_get(c.health_url, ca=ca, cert=cert)
    return status == 200


def _known_binaries() -> set[str]:
    return ({str(config.binary(b)) for b in (*config.K8S_BINARIES, *config.KEDA_BINARIES, "kwok", "prometheus")}
            | argocd.binaries())


def _our_pids(lay: Layout, st: dict[str, Any] | None) -> list[int]:
    """Pids of a (possibly crashed) run: from state.json, plus any of our binaries pointing into the state dir."""
    known = _known_binaries()
    pids: list[int] = []
    for name in [*argocd.COMPONENTS, *STOP_ORDER]:
        pid = (st or {}).get("pids", {}).get(name)
        binary = (st or {}).get("binaries", {}).get(name)
        if pid and binary and procs.is_ours(pid, binary):
            pids.append(pid)
    for pid in procs.find_by_marker(str(lay.root) + "/"):
        if pid not in pids and (procs.cmdline(pid) or [""])[0] in known:
            pids.append(pid)
    return pids


def stop_all(pids: list[int], timeout: float = 10.0) -> None:
    """Stop clients first, then the apiserver, then etcd (an apiserver losing etcd first hangs ~15 s)."""
    def kind(pid: int) -> str:
        return os.path.basename((procs.cmdline(pid) or [""])[0])

    last = ("kube-apiserver", "etcd")
    procs.stop([p for p in pids if kind(p) not in last], timeout)
    for name in last:
        procs.stop([p for p in pids if kind(p) == name], timeout)


def is_up(lay: Layout | None = None) -> dict[str, Any] | None:
    """The state if every recorded process runs and the apiserver is ready, else None."""
    lay = lay or layout()
    st = state.load(lay.state_file)
    if not st or not st.get("complete"):
        return None
    for name, pid in st.get("pids", {}).items():
        if name not in ADDONS and not procs.is_ours(pid, st["binaries"][name]):
            return None
    try:
        status, _ = Api(st["server"], pki.Pki(lay.pki_dir)).get("/readyz")
    except OSError:
        return None
    return st if status == 200 else None


def _kubeconfig_line(st: dict[str, Any]) -> str:
    return f"KUBECONFIG={st['kubeconfig']}"


class Starter:
    """Starts components, recording each in state.json at once so `down` can always clean up."""

    def __init__(self, lay: Layout, p: pki.Pki, st: dict[str, Any]) -> None:
        self.lay, self.pki, self.st = lay, p, st

    def start(self, c: Component) -> None:
        pid = procs.start(c.cmd, self.lay.log(c.name), cwd=self.lay.root,
                          env={**os.environ, **c.env} if c.env else None)
        self.st["pids"][c.name] = pid
        self.st["binaries"][c.name] = c.binary
        self.st["logs"][c.name] = str(self.lay.log(c.name))
        state.save(self.lay.state_file, self.st)

    def exited(self, *names: str) -> str | None:
        for name in names:
            if not procs.alive(self.st["pids"][name]):
                raise StartError(f"{name} exited during start-up", name)
        return None

    def wait_healthy(self, comps: list[Component], timeout: float) -> None:
        pending = list(comps)

        def check() -> bool:
            for c in list(pending):
                try:
                    if _healthy(c, self.pki):
                        pending.remove(c)
                except OSError:
                    pass
            return not pending

        try:
            procs.poll(check, timeout=timeout, interval=0.2, what=" and ".join(c.name for c in comps) + " health",
                       abort=lambda: self.exited(*(c.name for c in pending)))
        except StartError as e:
            e.component = e.component or pending[0].name
            raise


def prometheus_running(st: dict[str, Any]) -> bool:
    """Whether the Prometheus recorded in the state is alive."""
    pid = st.get("pids", {}).get("prometheus")
    return bool(pid) and procs.is_ours(pid, st["binaries"]["prometheus"])


def start_prometheus(lay: Layout, st: dict[str, Any], p: pki.Pki) -> None:
    """Start Prometheus, on the port it had before if it ran already (clients keep their URL)."""
    port = st["ports"].get("prometheus") or procs.free_ports(1)[0]
    comp = prometheus.component(lay, port)
    starter = Starter(lay, p, st)
    starter.start(comp)
    st["ports"]["prometheus"] = port
    starter.wait_healthy([comp], timeout=30)
    st["prometheus_url"] = f"http://127.0.0.1:{port}"
    st["prometheus_config"] = str(lay.prometheus_dir / "prometheus.yml")
    st["prometheus_job"] = config.PROMETHEUS_JOB
    if "prometheus" in st.get("stopped", []):
        st["stopped"].remove("prometheus")
    state.save(lay.state_file, st)


def _fail(lay: Layout, st: dict[str, Any] | None, err: StartError) -> int:
    name = err.component
    print(f"[cluster] start failed: {err}", file=sys.stderr)
    if name:
        print(f"[cluster] last lines of {lay.log(name)}:\n{procs.tail(lay.log(name))}", file=sys.stderr)
    stop_all(_our_pids(lay, st))
    print(f"[cluster] stopped what had started; logs kept in {lay.logs}", file=sys.stderr)
    return 1


def _start_argocd(lay: Layout, st: dict[str, Any]) -> None:
    missing = [n for n in argocd.COMPONENTS if n not in argocd.running(st)]
    if missing:
        log(f"starting Argo CD {argocd.VERSION}: {', '.join(missing)}")
        argocd.start(lay, st)
        log(f"Argo CD running; git server {st['git_url']}")


def up(n_nodes: int, gpus: int, with_prometheus: bool, taint: bool = False, with_argocd: bool = False,
       with_keda: bool = False) -> int:
    lay = layout()
    t0 = time.monotonic()
    with state_lock(lay):
        st = is_up(lay) or _start_stopped(lay)
        if st:
            log(f"already up ({lay.root}); nodes: {st['nodes']} x {st['gpus_per_node']} {config.GPU_RESOURCE}")
            if (n_nodes, gpus) != (st["nodes"], st["gpus_per_node"]):
                log("note: running with a different node shape than requested; `down` first to change it")
            if with_prometheus and not prometheus_running(st):
                build.ensure_prometheus()
                log("starting Prometheus")
                try:
                    start_prometheus(lay, st, pki.Pki(lay.pki_dir))
                except StartError as e:
                    return _prom_fail(lay, e)
            if with_argocd:
                build.ensure_all(helm=True, prometheus=False, argocd=True)
                try:
                    _start_argocd(lay, st)
                except StartError as e:
                    print(f"[cluster] Argo CD failed to start: {e}\n{procs.tail(lay.log(e.component or 'redis'))}",
                          file=sys.stderr)
                    return 1
            if with_keda and not keda.running(st) and _start_keda(lay, st):
                return 1
            print(_kubeconfig_line(st))
            return 0
        old = state.load(lay.state_file)
        leftovers = _our_pids(lay, old)
        if old or leftovers or lay.root.exists():
            log(f"cleaning up a previous run in {lay.root} (stopping {len(leftovers)} stale processes)")
            stop_all(leftovers)
            shutil.rmtree(lay.root, ignore_errors=True)
        build.ensure_all(helm=True, prometheus=with_prometheus, argocd=with_argocd, keda=with_keda)
        t_build = time.monotonic()
        lay.root.mkdir(parents=True, exist_ok=True)
        lay.logs.mkdir(exist_ok=True)
        lay.kubeconfigs.mkdir(exist_ok=True)
        p = pki.create(lay.pki_dir)
        ports = dict(zip(PORT_NAMES, procs.free_ports(len(PORT_NAMES)), strict=True))
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        kubeconfig.write(lay.kubeconfig, server, p, "admin", embed=True)
        for comp in ("kube-controller-manager", "kube-scheduler", "kwok"):
            kubeconfig.write(lay.component_kubeconfig(comp), server, p, comp, embed=False)
        st = {
            "version": config.KUBERNETES_VERSION, "complete": False, "state_dir": str(lay.root),
            "kubeconfig": str(lay.kubeconfig), "server": server, "nodes": n_nodes, "gpus_per_node": gpus,
            "gpu_resource": config.GPU_RESOURCE, "ports": ports, "pids": {}, "binaries": {}, "logs": {},
            "prometheus_url": None, "targets_dir": str(lay.targets_dir),
            "tools": {name: str(config.binary(name)) for name in ("kubectl", "helm", "kwok")},
            "started_at": time.time(),
        }
        state.save(lay.state_file, st)
        comps = {c.name: c for c in control_plane(lay, p, ports)}
        starter = Starter(lay, p, st)
        try:
            starter.start(comps["etcd"])
            starter.wait_healthy([comps["etcd"]], timeout=30)
            starter.start(comps["kube-apiserver"])
            starter.wait_healthy([comps["kube-apiserver"]], timeout=90)
            log(f"apiserver ready at {server} ({time.monotonic() - t_build:.1f}s)")
            rest = [comps[n] for n in ("kube-controller-manager", "kube-scheduler", "kwok")]
            for c in rest:
                starter.start(c)
            if with_prometheus:
                start_prometheus(lay, st, p)
            starter.wait_healthy(rest, timeout=60)
            log("controller-manager, scheduler and kwok healthy")
            nodes.create(lay.kubeconfig, n_nodes, gpus, taint=taint)
            api = Api(server, p)
            want = {nodes.node_name(i) for i in range(n_nodes)}
            procs.poll(lambda: want <= nodes.ready_names(lay.kubeconfig), timeout=60, interval=0.3,
                       what=f"{n_nodes} fake nodes Ready", abort=lambda: starter.exited("kwok"), component="kwok")
            procs.poll(lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default")[0] == 200
                       and api.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")[0] == 200,
                       timeout=60, interval=0.3, what="the default ServiceAccount and kube-root-ca.crt",
                       abort=lambda: starter.exited("kube-controller-manager"),
                       component="kube-controller-manager")
            if with_argocd:
                _start_argocd(lay, st)
            if with_keda:
                keda.start(lay, st, p, starter, api)
        except StartError as e:
            return _fail(lay, st, e)
        except (RuntimeError, OSError) as e:
            return _fail(lay, st, StartError(str(e)))
        st["complete"] = True
        state.save(lay.state_file, st)
        log(f"up in {time.monotonic() - t0:.1f}s: {n_nodes} nodes x {gpus} {config.GPU_RESOURCE}; "
            f"logs in {lay.logs}" + (f"; Prometheus {st['prometheus_url']}" if st.get("prometheus_url") else ""))
        print(_kubeconfig_line(st))
        return 0


def _start_stopped(lay: Layout) -> dict[str, Any] | None:
    """A cluster whose only missing components are the ones `e2e/cluster stop` stopped: start them in
    place (same ports and data) rather than rebuilding it. Returns the state if that made it up."""
    from . import faults  # faults uses this module

    st = state.load(lay.state_file)
    if not st or not st.get("complete") or not st.get("stopped"):
        return None
    stopped = set(st["stopped"])
    for name, pid in st.get("pids", {}).items():
        if name not in stopped and name not in ADDONS and not procs.is_ours(pid, st["binaries"][name]):
            return None  # something crashed besides: rebuild as before
    log(f"starting what `e2e/cluster stop` stopped: {', '.join(st['stopped'])}")
    try:
        faults.start_stopped(lay, st)
    except (faults.FaultError, StartError) as e:
        log(f"could not start them ({e}); rebuilding the cluster")
        return None
    return is_up(lay)


def _start_keda(lay: Layout, st: dict[str, Any]) -> int:
    """Start KEDA on a cluster that is up; on failure stop only KEDA (the cluster stays). 0 on success."""
    with build.build_lock():
        keda.ensure_built()
    p = pki.Pki(lay.pki_dir)
    log("starting KEDA")
    try:
        keda.start(lay, st, p, Starter(lay, p, st), Api(st["server"], p))
    except (StartError, RuntimeError, OSError) as e:
        name = getattr(e, "component", None) or keda.OPERATOR
        print(f"[cluster] KEDA failed to start: {e}\n{procs.tail(lay.log(name))}", file=sys.stderr)
        procs.stop([st["pids"][n] for n in keda.NAMES if n in st["pids"]])
        return 1
    return 0


def _prom_fail(lay: Layout, e: StartError) -> int:
    print(f"[cluster] Prometheus failed to start: {e}\n{procs.tail(lay.log('prometheus'))}", file=sys.stderr)
    return 1


def down(unless: Callable[[], bool] | None = None) -> int:
    """Stop everything and remove the state dir. unless() is checked under the state lock:
    if it returns True nothing is stopped (the pytest fixture uses it: "another session uses it")."""
    lay = layout()
    with state_lock(lay):
        if unless is not None and unless():
            log("still in use by another session; leaving it up")
            return 0
        st = state.load(lay.state_file)
        pids = _our_pids(lay, st)
        if not st and not pids and not lay.root.exists():
            log("not running; nothing to do")
            return 0
        t0 = time.monotonic()
        stop_all(pids)
        survivors = [p for p in pids if procs.alive(p)]
        shutil.rmtree(lay.root, ignore_errors=True)
        if survivors:
            log(f"could not stop pids {survivors}")
            return 1
        log(f"stopped {len(pids)} processes and removed {lay.root} in {time.monotonic() - t0:.1f}s")
        return 0


def status(as_json: bool = False) -> int:
    lay = layout()
    st = state.load(lay.state_file)
    running = is_up(lay)
    if as_json:
        print(json.dumps({"up": bool(running), **(st or {})}, indent=2, sort_keys=True))
        return 0 if running else 1
    if not st:
        print(f"not running (no state in {lay.root})")
        return 1
    print(f"cluster: {'UP' if running else 'NOT HEALTHY'}   state: {lay.root}")
    if st.get("stopped"):
        print(f"stopped on purpose: {', '.join(st['stopped'])} "
              "(`e2e/cluster start COMPONENT` or `up` brings them back)")
    print(f"kubernetes {st['version']}  api {st['server']}  kubeconfig {st['kubeconfig']}")
    print(f"nodes: {st['nodes']} x {st['gpus_per_node']} {config.GPU_RESOURCE}")
    for name in reversed(STOP_ORDER):
        if name not in st["pids"]:
            continue
        pid = st["pids"][name]
        ok = procs.is_ours(pid, st["binaries"][name])
        word = "running" if ok else "stopped" if name in st.get("stopped", []) else "DEAD"
        port = st["ports"].get(name, "")
        print(f"  {name:<24} pid {pid:<8} {word:<8} port {port!s:<6} log {st['logs'][name]}")
    if st.get("prometheus_url"):
        print(f"prometheus: {st['prometheus_url']}  targets dir: {st['targets_dir']}")
    for name in argocd.COMPONENTS[::-1]:
        if name in st["pids"]:
            word = "running" if name in argocd.running(st) else "DEAD"
            print(f"  {name:<30} pid {st['pids'][name]:<8} {word:<8} log {st['logs'][name]}")
    if st.get("git_url"):
        print(f"argocd {st['argocd']['version']}: git server {st['git_url']}  namespace {st['argocd']['namespace']}")
    return 0 if running else 1


def env() -> int:
    st = is_up()
    if not st:
        print("[cluster] not up: run `e2e/cluster up`", file=sys.stderr)
        return 1
    print(_kubeconfig_line(st))
    return 0

