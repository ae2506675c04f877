"""Build (or find in the cache) every binary the local cluster needs.

Kubernetes and etcd come from the wrapper module e2e/tools (go build, CGO off, version stamped);
kwok and helm from `go install <module>@<tag>`; Prometheus from Debian's package.
All Go caches and binaries live under the cache root, keyed by version, outside the repo.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from . import config


class BuildError(Exception):
    """A build command failed; str() is the command and the last lines of its output."""


def log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


def go_binary() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not found:
        raise BuildError("`go` not found on PATH (nor /usr/local/go/bin/go): install Go >= 1.24 first")
    return found


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOMODCACHE=str(config.gomodcache()),
        GOCACHE=str(config.gocache()),
        GOTOOLCHAIN="local",
        CGO_ENABLED="0",
    )
    env.pop("GOFLAGS", None)
    env.pop("GOBIN", None)
    return env


def k8s_ldflags() -> str:
    v = config.KUBERNETES_VERSION
    major, minor = v.lstrip("v").split(".")[:2]
    parts = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        parts += [f"-X {pkg}.gitVersion={v}", f"-X {pkg}.gitMajor={major}", f"-X {pkg}.gitMinor={minor}"]
    return " ".join(parts)


def run_logged(cmd: Sequence[str], *, cwd: Path, env: dict[str, str], logfile: Path) -> float:
    """Run cmd with output to logfile; on failure raise BuildError with the command and its tail."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with open(logfile, "w") as out:
        out.write(f"$ (cd {cwd} && {shlex.join(cmd)})\n")
        out.flush()
        try:
            rc = subprocess.run(list(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        except OSError as e:
            rc, _ = 127, out.write(f"{e}\n")
    if rc != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-40:]
        raise BuildError(
            f"command failed (exit {rc}): {shlex.join(cmd)}\n  in {cwd}\n  full log: {logfile}\n"
            + "\n".join("  | " + line for line in tail)
        )
    return time.monotonic() - start


@contextmanager
def build_lock() -> Iterator[None]:
    """Serialise builds between concurrent e2e/cluster invocations (2 cores: never build twice)."""
    root = config.cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "build.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log("another build is running; waiting for it")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _adopt_etcd(out_dir: Path) -> None:
    # go names the etcd binary after the last path element before the /v3 suffix: "server".
    for name in ("server", "v3"):
        built = out_dir / name
        if built.exists():
            built.replace(out_dir / "etcd")


def build_k8s() -> None:
    _adopt_etcd(config.k8s_bin_dir())
    missing = [b for b in config.K8S_BINARIES if not config.binary(b).exists()]
    if not missing:
        return
    out_dir = config.k8s_bin_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    log(f"building Kubernetes {config.KUBERNETES_VERSION} + etcd {config.ETCD_VERSION} (missing: "
        f"{', '.join(missing)}); this takes minutes with a warm Go cache, much longer cold")
    env = go_env()
    env["GOFLAGS"] = "-mod=mod"
    cmd = [
        go_binary(), "build", "-trimpath", "-ldflags", k8s_ldflags(), "-o", str(out_dir) + "/",
        "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
        "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes/cmd/kubectl", "go.etcd.io/etcd/server/v3",
    ]
    logfile = config.cache_root() / "logs" / "build-k8s.log"
    secs = run_logged(cmd, cwd=config.tools_module_dir(), env=env, logfile=logfile)
    _adopt_etcd(out_dir)
    still = [b for b in config.K8S_BINARIES if not config.binary(b).exists()]
    if still:
        raise BuildError(f"go build succeeded but {', '.join(still)} missing from {out_dir}")
    log(f"built Kubernetes binaries in {secs:.0f}s")


def helm_ldflags() -> str:
    """As helm's Makefile: stamp its version and the Kubernetes version its client-go (v0.36) targets."""
    flags = ["-s", "-w", f"-X helm.sh/helm/v3/internal/version.version={config.HELM_VERSION}",
             "-X helm.sh/helm/v3/internal/version.gitTreeState=clean"]
    for pkg in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
        flags += [f"-X {pkg}.k8sVersionMajor=1", f"-X {pkg}.k8sVersionMinor={config.HELM_K8S_MINOR}"]
    return " ".join(flags)


def go_install(module_cmd: str, version: str, target: Path, ldflags: str = "-s -w") -> None:
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"building {module_cmd}@{version} (go install, cached under {config.cache_root()})")
    env = go_env()
    env["GOBIN"] = str(target.parent)
    cmd = [go_binary(), "install", "-trimpath", "-ldflags", ldflags, f"{module_cmd}@{version}"]
    secs = run_logged(cmd, cwd=config.cache_root(), env=env,
                      logfile=config.cache_root() / "logs" / f"build-{target.name}.log")
    if not target.exists():
        raise BuildError(f"go install succeeded but {target} is missing")
    log(f"built {target.name} in {secs:.0f}s")


def apt_install(package: str, binary: Path) -> None:
    """Install a Debian package with apt-get (as root) unless binary exists. Raises BuildError."""
    if binary.exists():
        return
    if os.geteuid() != 0:
        raise BuildError(f"{binary} is missing: install the Debian package `{package}` "
                         f"(sudo apt-get install {package})")
    log(f"installing Debian package {package} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    logfile = config.cache_root() / "logs" / f"apt-{package}.log"
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    run_logged(["apt-get", *lock, "update"], cwd=Path("/"), env=env, logfile=logfile)
    run_logged(["apt-get", *lock, "install", "-y", "--no-install-recommends", package],
               cwd=Path("/"), env=env, logfile=logfile)
    if not binary.exists():
        raise BuildError(f"apt-get installed {package} but {binary} is missing")


def ensure_prometheus() -> None:
    apt_install(config.PROMETHEUS_DEB, config.binary("prometheus"))


def ensure_all(*, helm: bool = True, prometheus: bool = True, argocd: bool = False, keda: bool = False) -> None:
    """Build whatever is missing (Argo CD and its Redis, KEDA only if asked). Raises BuildError."""
    from . import argocd as argo  # argocd uses this module
    from . import keda as keda_build  # so does keda

    with build_lock():
        build_k8s()
        go_install("sigs.k8s.io/kwok/cmd/kwok", config.KWOK_VERSION, config.binary("kwok"))
        if helm:
            go_install("helm.sh/helm/v3/cmd/helm", config.HELM_VERSION, config.binary("helm"), helm_ldflags())
        if argocd:
            argo.ensure_built()
        if keda:
            keda_build.ensure_built()
    if prometheus:
        ensure_prometheus()
    if argocd:
        argo.ensure_redis()
