"""The liveness endpoint, `/healthz`, served from its own thread.

Our own server rather than kopf's liveness endpoint: a standby operator runs no kopf at all (see
leader.py) yet must answer its probe, and a thread keeps answering even when the event loop is
wedged, which is exactly when the answer must be 500 (the loops stop finishing rounds).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelfleet.supervise import LOOPS, Loops

log = logging.getLogger(__name__)


def health_report(loops: Loops, role: str) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body): 500 naming the stalled loops, else 200."""
    stalled = loops.stalled()
    body: dict[str, Any] = {"status": "stalled" if stalled else "ok", "role": role, "loops": loops.report()}
    if stalled:
        body["stalled"] = stalled
    return (500 if stalled else 200), body


def serve_health(port: int, role: Callable[[], str], loops: Loops = LOOPS) -> ThreadingHTTPServer:
    """Start `/healthz` on `port` in a daemon thread; returns the server (for shutdown in tests)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/healthz":
                self.send_error(404)
                return
            code, body = health_report(loops, role())
            if code != 200:
                log.warning("/healthz: %s", body["stalled"])
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds are not worth a log line."""

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    threading.Thread(target=server.serve_forever, name="healthz", daemon=True).start()
    return server
