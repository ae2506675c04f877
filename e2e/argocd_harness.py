"""Helpers for the Argo CD e2e (test_argocd.py): a git working copy pushed to the cluster's git server,
Applications, and a watcher recording an Application's health and sync transitions with timestamps.

    repo = GitRepo(workdir, f"{git_url}/{ns}.git")
    repo.write({"a.yaml": text}); repo.commit_push("add a")
    with AppWatch(cluster, "my-app") as watch:
        ...
        watch.wait(lambda app: health(app) == "Healthy", timeout=60, what="Healthy")
        print(watch.table())
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from helpers import Cluster, wait_for

ARGO = ("argoproj.io", "v1alpha1", "argocd", "applications")
IN_CLUSTER = "https://kubernetes.default.svc"


class GitRepo:
    """A local working copy whose `main` is pushed to <url> (the git server creates the repo on push)."""

    def __init__(self, workdir: Path, url: str) -> None:
        self.dir, self.url = workdir, url
        workdir.mkdir(parents=True, exist_ok=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str) -> str:
        res = subprocess.run(["git", "-c", "user.name=e2e", "-c", "user.email=e2e@modelfleet.invalid", *args],
                             cwd=self.dir, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {res.stderr.strip()}")
        return res.stdout.strip()

    def write(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            path = self.dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def remove(self, *rels: str) -> None:
        self.git("rm", "--quiet", *rels)

    def commit_push(self, message: str) -> str:
        """Commit everything and push main; returns the commit sha."""
        self.git("add", "-A")
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", self.url, "main")
        return self.git("rev-parse", "HEAD")


def application(name: str, repo_url: str, namespace: str, path: str = ".", recurse: bool = False) -> str:
    """An Application as docs/install.md sets it up: automated sync with prune and self-heal,
    server-side apply, the destination namespace created."""
    source: dict[str, Any] = {"repoURL": repo_url, "targetRevision": "main", "path": path}
    if recurse:
        source["directory"] = {"recurse": True}
    return yaml.safe_dump({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default", "source": source,
            "destination": {"server": IN_CLUSTER, "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                           "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"]},
        },
    })


def get_app(cluster: Cluster, name: str) -> dict[str, Any]:
    group, version, ns, plural = ARGO
    obj: dict[str, Any] = cluster.custom.get_namespaced_custom_object(group, version, ns, plural, name)
    return obj


def health(app: dict[str, Any]) -> str:
    return str(((app.get("status") or {}).get("health") or {}).get("status", ""))


def sync_status(app: dict[str, Any]) -> str:
    return str(((app.get("status") or {}).get("sync") or {}).get("status", ""))


def synced_revision(app: dict[str, Any]) -> str:
    return str(((app.get("status") or {}).get("sync") or {}).get("revision", ""))


def resource_health(app: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    """Argo CD's health of one managed resource ({status, message}), {} if not listed."""
    for r in (app.get("status") or {}).get("resources") or []:
        if r.get("kind") == kind and r.get("name") == name:
            return dict(r.get("health") or {})
    return {}


def refresh(cluster: Cluster, name: str) -> None:
    """Ask Argo CD to compare with git now, as a git webhook would (else it polls every app-resync)."""
    cluster.kubectl("-n", "argocd", "annotate", "application", name, "argocd.argoproj.io/refresh=normal",
                    "--overwrite")


def summary(app: dict[str, Any]) -> str:
    """The parts of an Application a person reads on failure."""
    st = app.get("status") or {}
    keep = {k: st.get(k) for k in ("health", "sync", "conditions", "operationState", "resources")}
    return yaml.safe_dump(keep, width=140)


class AppWatch:
    """Poll an Application every `interval` s in a thread; record each change of (health, sync) with the
    time it was first seen, plus every health message of its resources."""

    def __init__(self, cluster: Cluster, name: str, interval: float = 0.25) -> None:
        self.cluster, self.name, self.interval = cluster, name, interval
        self.t0 = time.monotonic()
        self.transitions: list[tuple[float, str, str, str, str]] = []  # (s, wall clock, health, sync, msgs)
        self.samples = 0
        self.last: dict[str, Any] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"appwatch-{name}", daemon=True)

    def __enter__(self) -> AppWatch:
        if not self._thread.is_alive():  # new_app() starts it before the Application exists
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                app = get_app(self.cluster, self.name)
            except Exception as e:  # not created yet, or the API blinking
                self.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
                app = {}
            if app:
                self.last, self.samples = app, self.samples + 1
                state = (health(app), sync_status(app))
                if not self.transitions or self.transitions[-1][2:4] != state:
                    msgs = "; ".join(f"{r['kind']}/{r['name']}={(r.get('health') or {}).get('status')}"
                                     for r in (app.get("status") or {}).get("resources") or []
                                     if r.get("health"))
                    now = time.time()
                    wall = time.strftime("%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
                    self.transitions.append((round(time.monotonic() - self.t0, 2), wall, *state, msgs))
            self._stop.wait(self.interval)

    def mark(self) -> int:
        """An index into transitions: wait(..., since=mark) looks only at what came after it."""
        return len(self.transitions)

    def healths(self, since: int = 0) -> list[str]:
        """The sequence of distinct health values seen since a mark."""
        out: list[str] = []
        for t in self.transitions[since:]:
            if not out or out[-1] != t[2]:
                out.append(t[2])
        return out

    def wait(self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float, what: str) -> dict[str, Any]:
        """Wait until the latest Application satisfies predicate; the failure names what and shows the app."""
        def check() -> dict[str, Any] | None:
            return self.last if self.last and predicate(self.last) else None

        try:
            app: dict[str, Any] = wait_for(check, timeout=timeout, interval=0.2,
                                           message=f"Application {self.name}: {what}")
        except AssertionError as e:
            raise AssertionError(f"{e}\ntransitions:\n{self.table()}\n"
                                 f"application status:\n{summary(self.last)}") from None
        return app

    def table(self) -> str:
        return "\n".join(f"  +{s:7.2f}s {wall} health={h:<12} sync={sy:<10} {msgs}"
                         for s, wall, h, sy, msgs in self.transitions)
