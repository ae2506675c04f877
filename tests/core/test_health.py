"""/healthz: 200 while every loop finishes rounds, 500 naming the stalled loop — over real HTTP."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

from modelfleet.health import health_report, serve_health
from modelfleet.supervise import Loops


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_report_is_500_with_the_stalled_loop() -> None:
    loops = Loops()
    now = time.monotonic()
    loops.register("resync", 1, now=now - 100)  # 100 s > 3 x 1 + 30
    loops.register("autoscaler", 15, now=now)
    code, body = health_report(loops, "leader")
    assert code == 500 and set(body["stalled"]) == {"resync"} and body["role"] == "leader"


def test_served_over_http_flips_when_a_loop_stalls() -> None:
    loops = Loops()
    loops.register("lease", 2)
    port = _free_port()
    server = serve_health(port, lambda: "standby", loops)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
            assert json.loads(resp.read())["role"] == "standby"
        loops.register("lease", 2, now=time.monotonic() - 3600)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)
            raise AssertionError("a stalled loop must fail /healthz")
        except urllib.error.HTTPError as exc:
            assert exc.code == 500
            assert "lease" in json.loads(exc.read())["stalled"]
    finally:
        server.shutdown()
