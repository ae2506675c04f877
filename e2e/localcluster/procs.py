"""Processes, ports and polling: start detached components, find and stop them, wait with deadlines."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class StartError(Exception):
    """A component failed to start; .component names it (its log tail is shown)."""

    def __init__(self, message: str, component: str | None = None) -> None:
        super().__init__(message)
        self.component = component


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def start(cmd: Sequence[str], logfile: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> int:
    """Start a detached process (own session, survives our exit) logging to logfile; return its pid."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "ab") as out:
        out.write(("$ " + " ".join(cmd) + "\n").encode())
        out.flush()
        proc = subprocess.Popen(
            list(cmd), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=cwd, env=env, start_new_session=True, close_fds=True,
        )
    return proc.pid


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def alive(pid: int) -> bool:
    """Running and not a zombie (orphans may not be reaped at once inside containers)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def is_ours(pid: int, binary: str) -> bool:
    """The pid still runs the binary we started (guards against pid reuse)."""
    args = cmdline(pid)
    return bool(args) and alive(pid) and (args[0] == binary or os.path.basename(args[0]) == os.path.basename(binary))


def find_by_marker(marker: str) -> list[int]:
    """Pids whose command line mentions marker (our state dir): leftovers of a crashed run."""
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        args = cmdline(int(entry.name))
        if args and any(marker in a for a in args[1:]) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def stop(pids: Sequence[int], timeout: float = 15.0) -> None:
    """SIGTERM the given pids, wait up to timeout, then SIGKILL survivors."""
    live = [p for p in pids if alive(p)]
    for p in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in live):
        time.sleep(0.1)
    for p in live:
        if alive(p):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(p) for p in live):
        time.sleep(0.05)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"  (no log at {path})"
    return "\n".join("  | " + line for line in text[-lines:])


def poll(
    predicate: Callable[[], T], *, timeout: float, interval: float = 0.2, what: str,
    abort: Callable[[], str | None] | None = None, component: str | None = None,
) -> T:
    """Call predicate until it returns a truthy value; raise StartError after timeout seconds.

    abort() returning a message (e.g. "etcd exited") stops the wait early.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as e:
            last = e
        if abort is not None:
            reason = abort()
            if reason:
                raise StartError(f"{reason} while waiting for {what}", component)
        if time.monotonic() >= deadline:
            raise StartError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})", component)
        time.sleep(interval)


def https_get(url: str, *, ca: Path | None = None, cert: tuple[Path, Path] | None = None,
              timeout: float = 2.0) -> tuple[int, str]:
    """GET url; returns (status, body). ca=None disables verification (component healthz)."""
    if url.startswith("https"):
        ctx = ssl.create_default_context(cafile=str(ca)) if ca else ssl._create_unverified_context()
        if cert:
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    else:
        ctx = None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
