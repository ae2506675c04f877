"""A local TCP proxy that tests switch between forwarding and black-holing (stdlib, threads).

    with FaultProxy(upstream=("127.0.0.1", 6443)) as proxy:     # listens on 127.0.0.1:proxy.port
        ...                                                      # clients talk through it
        proxy.blackhole()   # connections stay open, nothing moves: calls hang until their timeouts
        proxy.forward()     # the path is back: held bytes flow, new connections reach upstream

Bytes pass untouched (TLS goes through end to end, so certificates for 127.0.0.1 stay valid).
Black-holing is a network partition with TCP retransmission: the proxy stops reading and sending
on every connection (old and new), so the peers see no error, only silence; new connections are
accepted by the kernel but not connected upstream until the path is back. ``reset()`` closes every
connection (a peer restart), ``garbage(payload)`` answers every new connection with fixed bytes and
closes it (a broken server), ``reject()`` closes new connections at once (connection refused-like).

Run by hand: ``python e2e/faultproxy.py --upstream 127.0.0.1:6443`` prints the port; SIGUSR1
toggles the black hole.
"""

from __future__ import annotations

import argparse
import contextlib
import selectors
import signal
import socket
import sys
import threading
from typing import Literal

Mode = Literal["forward", "blackhole", "garbage", "reject"]
CHUNK = 65536
TICK = 0.1  # how often an idle pump looks at the mode


class FaultProxy:
    """127.0.0.1:port -> upstream, with a mode the test sets at any time."""

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self._mode: Mode = "forward"
        self._payload = b""
        self._changed = threading.Condition()
        self._conns: set[socket.socket] = set()  # every open socket, both sides
        self._clients: set[socket.socket] = set()  # the accepted ones
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self.accepted = 0  # connections accepted so far
        self.forwarded_bytes = 0
        self._listener = socket.create_server(("127.0.0.1", port), backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, name=f"faultproxy-{self.port}", daemon=True)

    # -- control
    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _set(self, mode: Mode, payload: bytes = b"") -> None:
        with self._changed:
            self._mode, self._payload = mode, payload
            self._changed.notify_all()

    def forward(self) -> None:
        """Pass bytes both ways (the default)."""
        self._set("forward")

    def blackhole(self) -> None:
        """Keep every connection open and move no byte, on old and new connections."""
        self._set("blackhole")

    def garbage(self, payload: bytes) -> None:
        """From now on answer every connection with payload (after reading its request) and close it;
        open connections are closed first, so keep-alive clients reconnect and get the garbage too."""
        self._set("garbage", payload)
        self.reset()

    def reject(self) -> None:
        """Close every open connection, and each new one at once."""
        self._set("reject")
        self.reset()

    def reset(self) -> int:
        """Close every open connection (both sides); returns how many sockets were closed."""
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            _close(s)
        return len(conns)

    def open_connections(self) -> int:
        """Client connections open now."""
        with self._lock:
            return len(self._clients & self._conns)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting and close every connection."""
        self._stopped.set()
        self._set("reject")
        _close(self._listener)
        self.reset()
        self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- work
    def _track(self, s: socket.socket) -> None:
        with self._lock:
            self._conns.add(s)

    def _untrack(self, *socks: socket.socket) -> None:
        with self._lock:
            for s in socks:
                self._conns.discard(s)
                self._clients.discard(s)
        for s in socks:
            _close(s)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            self._track(client)
            with self._lock:
                self._clients.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _wait_while_blackholed(self, client: socket.socket) -> bool:
        """Block while black-holed; False if the proxy closes or the connection was reset meanwhile."""
        with self._changed:
            while self._mode == "blackhole" and not self._stopped.is_set():
                self._changed.wait(TICK)
        with self._lock:
            return not self._stopped.is_set() and client in self._conns

    def _serve(self, client: socket.socket) -> None:
        if not self._wait_while_blackholed(client):
            self._untrack(client)
            return
        mode, payload = self._mode, self._payload
        if mode == "reject":
            self._untrack(client)
            return
        if mode == "garbage":
            with contextlib.suppress(OSError):
                client.settimeout(2.0)
                client.recv(CHUNK)
                client.sendall(payload)
            self._untrack(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._untrack(client)  # upstream down: the client sees its connection closed
            return
        self._track(upstream)
        self._pump(client, upstream)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        sel = selectors.DefaultSelector()
        try:
            for s in (client, upstream):
                s.setblocking(True)
                sel.register(s, selectors.EVENT_READ)
            while not self._stopped.is_set():
                if self._mode == "blackhole" and not self._wait_while_blackholed(client):
                    return
                with self._lock:
                    if client not in self._conns:
                        return  # reset()
                for key, _ in sel.select(TICK):
                    if self._mode == "blackhole":
                        break  # leave the bytes in the kernel until the path is back
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(CHUNK)
                    if not data:
                        return
                    peer[src].sendall(data)
                    self.forwarded_bytes += len(data)
        except OSError:
            return
        finally:
            sel.close()
            self._untrack(client, upstream)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="TCP proxy 127.0.0.1:PORT -> UPSTREAM; SIGUSR1 toggles a black hole.")
    p.add_argument("--upstream", required=True, help="HOST:PORT to forward to")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    args = p.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    if not host or not port.isdigit():
        p.error(f"--upstream {args.upstream!r}: use HOST:PORT")
    proxy = FaultProxy((host, int(port)), args.port).start()

    def toggle(*_: object) -> None:
        proxy.forward() if proxy.mode == "blackhole" else proxy.blackhole()
        print(f"mode: {proxy.mode}", flush=True)

    signal.signal(signal.SIGUSR1, toggle)
    print(f"listening on {proxy.address} -> {args.upstream}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        signal.pause()
    proxy.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
