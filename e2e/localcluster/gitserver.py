"""A git server on localhost for Argo CD: smart HTTP through `git http-backend`, repos made on first push.

    python3 e2e/localcluster/gitserver.py --root DIR --port PORT

`git push http://127.0.0.1:PORT/<name>.git main` creates DIR/<name>.git (bare) if it is missing, then
git http-backend serves the push; clones and fetches (Argo CD's repo server) read any repo under DIR.
Only a push creates a repo: a fetch of an unknown name is a 404, as on any git host.
Standard library only; one thread per request; loopback only, no authentication (a test cluster).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = re.compile(r"^/([A-Za-z0-9._-]+\.git)(/.*)?$")


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, de-chunked (git sends large pushes with chunked transfer encoding)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return bytes(out)
            out += handler.rfile.read(size)
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


class GitHandler(BaseHTTPRequestHandler):
    root: Path

    def log_message(self, fmt: str, *args: object) -> None:
        sys.stderr.write(f"{self.address_string()} {fmt % args}\n")

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        if path == "/healthz":
            self._reply(200, b"ok\n")
            return
        m = REPO.match(path)
        if not m:
            self._reply(404, b"not a repository path: /<name>.git/...\n")
            return
        repo = self.root / m.group(1)
        if not repo.exists() and "git-receive-pack" in self.path:
            # http.receivepack: push without REMOTE_USER (no authentication here).
            subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(repo)], check=True)
            subprocess.run(["git", "-C", str(repo), "config", "http.receivepack", "true"], check=True)
        body = _read_body(self) if self.command == "POST" else b""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path, "QUERY_STRING": query, "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0], "SERVER_PROTOCOL": "HTTP/1.0",
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        res = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        if res.stderr:
            sys.stderr.write(res.stderr.decode(errors="replace"))
        head, _, payload = res.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = res.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reply(self, status: int, text: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, required=True, help="directory holding the bare repositories")
    p.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    args = p.parse_args(argv)
    args.root.mkdir(parents=True, exist_ok=True)
    GitHandler.root = args.root.resolve()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), GitHandler)
    print(f"git server on http://127.0.0.1:{args.port}/ serving {GitHandler.root}", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
