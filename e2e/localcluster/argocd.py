"""Argo CD in the local cluster: its build, Redis, a git server, the repo server and the application controller.

Argo CD v3.2.11 is one Go binary that acts as `argocd-application-controller` or `argocd-repo-server` by the
name it runs under (symlinks), built from the wrapper module e2e/tools/argocd and cached beside the
Kubernetes binaries. Both run outside the cluster as local processes: the controller with
ARGOCD_FAKE_IN_CLUSTER=true and the admin kubeconfig, so `https://kubernetes.default.svc` is this cluster.
Redis is Debian's redis-server; the git server is gitserver.py (a push to `<git_url>/<name>.git` creates the
repository). The modelfleet health check is installed as docs/install.md says: `kubectl patch` of
argocd-cm with manifests/argocd/argocd-cm-patch.yaml. No API server, UI or Dex.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import build, config, procs, state
from .components import Component, Layout

VERSION = "v3.2.11"  # also pinned in e2e/tools/argocd/go.mod
BUILD_DATE = "2026-04-30T18:03:31Z"  # the release tag's time (module proxy .info)
MODULE = "github.com/argoproj/argo-cd/v3"
REDIS_DEB = "redis-server"
NAMESPACE = "argocd"
COMPONENTS = ("argocd-application-controller", "argocd-repo-server", "git-server", "redis")  # stop order
ROLES = ("argocd-application-controller", "argocd-repo-server")  # symlinks to the one binary
# How often the controller compares every Application with git (default 180 s); tests also ask for a
# refresh after a push, as a git webhook would.
APP_RESYNC_SECONDS = 10
REPO_ROOT = Path(__file__).resolve().parents[2]
HEALTH_PATCH = REPO_ROOT / "manifests" / "argocd" / "argocd-cm-patch.yaml"
GITSERVER = Path(__file__).resolve().parent / "gitserver.py"
CRD_FILES = ("application-crd.yaml", "appproject-crd.yaml")


def bin_dir() -> Path:
    return config.cache_root() / "bin" / f"argocd-{VERSION}"


def binary(role: str = "argocd") -> Path:
    """The cached binary (`argocd`) or one of its role symlinks."""
    return bin_dir() / role


def redis_binary() -> Path:
    return Path(os.environ.get("MODELFLEET_REDIS") or "/usr/bin/redis-server")


def module_dir() -> Path:
    """Argo CD's source in the Go module cache (its CRDs live in manifests/crds)."""
    return config.gomodcache() / f"{MODULE}@{VERSION}"


def crd_dir() -> Path:
    """Argo CD's Application and AppProject CRDs, copied beside the binary (the Go caches may be deleted)."""
    return bin_dir() / "crds"


def ldflags() -> str:
    """As Argo CD's Makefile: stamp the version in its common package (`argocd-... version` prints it)."""
    pkg = f"{MODULE}/common"
    return " ".join(["-s", "-w", f"-X {pkg}.version={VERSION.lstrip('v')}", f"-X {pkg}.gitTag={VERSION}",
                     f"-X {pkg}.gitTreeState=clean", f"-X {pkg}.buildDate={BUILD_DATE}"])


def ensure_built() -> None:
    """Build and cache the Argo CD binary and its role symlinks if missing (call under build.build_lock)."""
    target = binary()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        build.log(f"building Argo CD {VERSION} (one ~150 MB binary; 25 min cold on 2 busy cores, seconds cached)")
        env = build.go_env()
        env["GOFLAGS"] = "-mod=mod"
        tmp = target.with_name("argocd.tmp")
        cmd = [build.go_binary(), "build", "-trimpath", "-ldflags", ldflags(), "-o", str(tmp), f"{MODULE}/cmd"]
        secs = build.run_logged(cmd, cwd=config.tools_module_dir() / "argocd", env=env,
                                logfile=config.cache_root() / "logs" / "build-argocd.log")
        tmp.replace(target)
        build.log(f"built Argo CD in {secs:.0f}s")
    if not crd_dir().exists():
        if not module_dir().exists():
            build.run_logged([build.go_binary(), "mod", "download", f"{MODULE}@{VERSION}"],
                             cwd=config.tools_module_dir() / "argocd", env=build.go_env(),
                             logfile=config.cache_root() / "logs" / "build-argocd-crds.log")
        tmp = crd_dir().with_name("crds.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name in CRD_FILES:
            shutil.copyfile(module_dir() / "manifests" / "crds" / name, tmp / name)
        tmp.replace(crd_dir())
    for role in ROLES:
        link = binary(role)
        if not link.is_symlink():
            link.unlink(missing_ok=True)
            link.symlink_to(target.name)


def ensure_redis() -> None:
    """Install Debian's redis-server with apt-get if missing (as build.ensure_prometheus)."""
    build.apt_install(REDIS_DEB, redis_binary())


def binaries() -> set[str]:
    """What our processes run as (for finding leftovers of a crashed run)."""
    return {str(binary(r)) for r in ROLES} | {str(redis_binary())}


# --------------------------------------------------------------------------- processes


def components(lay: Layout, ports: dict[str, int]) -> list[Component]:
    """Redis, the git server, the repo server and the controller, in start order."""
    root = lay.root / "argocd"
    redis = f"127.0.0.1:{ports['redis']}"
    return [
        Component("redis", str(redis_binary()),
                  ["--port", str(ports["redis"]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                   "--set-proc-title", "no", "--dir", str(root), "--daemonize", "no"], health_url=None),
        Component("git-server", sys.executable,
                  [str(GITSERVER), "--root", str(root / "git"), "--port", str(ports["git-server"])],
                  health_url=f"http://127.0.0.1:{ports['git-server']}/healthz"),
        Component("argocd-repo-server", str(binary("argocd-repo-server")),
                  ["--port", str(ports["argocd-repo-server"]), "--address", "127.0.0.1",
                   "--metrics-address", "127.0.0.1", "--metrics-port", str(ports["argocd-repo-server-metrics"]),
                   "--redis", redis, "--disable-tls", "--loglevel", "info"],
                  health_url=f"http://127.0.0.1:{ports['argocd-repo-server-metrics']}/healthz"),
        Component("argocd-application-controller", str(binary("argocd-application-controller")),
                  ["--kubeconfig", str(lay.kubeconfig), "--namespace", NAMESPACE,
                   "--repo-server", f"127.0.0.1:{ports['argocd-repo-server']}", "--repo-server-plaintext",
                   "--redis", redis, "--metrics-port", str(ports["argocd-application-controller-metrics"]),
                   "--app-resync", str(APP_RESYNC_SECONDS), "--self-heal-timeout-seconds", "2",
                   "--status-processors", "4", "--operation-processors", "2", "--loglevel", "info",
                   # per-resource health in the Application (v3 keeps it only in Redis by default): tests read it
                   "--persist-resource-health"],
                  health_url=f"http://127.0.0.1:{ports['argocd-application-controller-metrics']}/healthz"),
    ]


def _env(lay: Layout) -> dict[str, str]:
    path = os.pathsep.join([str(bin_dir()), str(config.helm_bin_dir()), str(config.k8s_bin_dir()),
                            os.environ.get("PATH", "/usr/bin:/bin")])
    return dict(os.environ, PATH=path, ARGOCD_FAKE_IN_CLUSTER="true", ARGOCD_GPG_ENABLED="false",
                HOME=str(lay.root / "argocd" / "home"), KUBECONFIG=str(lay.kubeconfig))


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


def _http_ok(url: str) -> bool:
    status, _ = procs.https_get(url)
    return status == 200


def running(st: dict[str, Any]) -> list[str]:
    """Names of our components that run now."""
    return [n for n in COMPONENTS if st.get("pids", {}).get(n)
            and procs.is_ours(st["pids"][n], st["binaries"][n])]


def kubectl(lay: Layout, *args: str, stdin: str | None = None) -> str:
    """Run the cluster's kubectl with the admin kubeconfig; raise StartError with its stderr."""
    res = subprocess.run([str(config.binary("kubectl")), "--kubeconfig", str(lay.kubeconfig), *args],
                         input=stdin, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise procs.StartError(f"kubectl {' '.join(args)} failed: {res.stderr.strip()}",
                               "argocd-application-controller")
    return res.stdout


def install_objects(lay: Layout) -> None:
    """The argocd namespace, Argo CD's CRDs, its ConfigMaps/Secret, the default AppProject, and
    modelfleet's health check patched into argocd-cm exactly as docs/install.md tells users."""
    kubectl(lay, "apply", "--server-side", *(a for name in CRD_FILES for a in ("-f", str(crd_dir() / name))))
    established = '{.items[*].status.conditions[?(@.type=="Established")].status}'

    def both_established() -> bool:
        out = kubectl(lay, "get", "crd", "applications.argoproj.io", "appprojects.argoproj.io", "-o",
                      f"jsonpath={established}")
        return out.split() == ["True", "True"]

    procs.poll(both_established, timeout=60, interval=0.3, what="Argo CD's CRDs Established",
               component="argocd-application-controller")
    part_of = {"app.kubernetes.io/part-of": "argocd"}  # Argo CD's settings informers select on this label
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cm", "namespace": NAMESPACE,
                                                               "labels": part_of}, "data": {}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-rbac-cm", "namespace": NAMESPACE,
                                                               "labels": part_of}, "data": {}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "argocd-secret", "namespace": NAMESPACE,
                                                            "labels": part_of},
         "stringData": {"server.secretkey": secrets.token_hex(16)}},
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
         "metadata": {"name": "default", "namespace": NAMESPACE},
         "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}],
                  "clusterResourceWhitelist": [{"group": "*", "kind": "*"}]}},
    ]
    for obj in objects:  # the namespace first, then what lives in it
        kubectl(lay, "apply", "-f", "-", stdin=json.dumps(obj))
    kubectl(lay, "-n", NAMESPACE, "patch", "configmap", "argocd-cm", "--patch-file", str(HEALTH_PATCH))


def start(lay: Layout, st: dict[str, Any]) -> None:
    """Start whatever of Argo CD is not running (ports kept across restarts); record git_url in state.json.
    Raises procs.StartError naming the component that failed."""
    (lay.root / "argocd" / "home").mkdir(parents=True, exist_ok=True)
    names = [*COMPONENTS, "argocd-repo-server-metrics", "argocd-application-controller-metrics"]
    ports = st["ports"]
    fresh = [n for n in names if n not in ports]
    ports.update(zip(fresh, procs.free_ports(len(fresh)), strict=True))
    up = set(running(st))
    if not up:
        install_objects(lay)
    env = _env(lay)
    for comp in components(lay, ports):
        if comp.name in up:
            continue
        pid = procs.start(comp.cmd, lay.log(comp.name), cwd=lay.root, env=env)
        st["pids"][comp.name], st["binaries"][comp.name] = pid, comp.binary
        st["logs"][comp.name] = str(lay.log(comp.name))
        state.save(lay.state_file, st)

        def exited(name: str = comp.name, pid: int = pid) -> str | None:
            return None if procs.alive(pid) else f"{name} exited"

        check = ((lambda: _redis_ping(ports["redis"])) if comp.health_url is None
                 else (lambda url=comp.health_url: _http_ok(url)))
        procs.poll(check, timeout=60, interval=0.3, what=f"{comp.name} health", abort=exited, component=comp.name)
    st["git_url"] = f"http://127.0.0.1:{ports['git-server']}"
    st["argocd"] = {"version": VERSION, "namespace": NAMESPACE, "binary": str(binary()),
                    "redis": f"127.0.0.1:{ports['redis']}", "app_resync_seconds": APP_RESYNC_SECONDS}
    state.save(lay.state_file, st)
