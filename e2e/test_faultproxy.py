"""The fault proxy itself, against a real TCP echo server on loopback (no cluster needed)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from faultproxy import FaultProxy
from helpers import wait_for


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A loopback TCP server that sends back what it receives."""
    srv = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield srv.getsockname()
    stop.set()
    srv.close()


def roundtrip(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    return sock.recv(1024)


def test_forward_blackhole_and_back(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        old = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert roundtrip(old, b"hello") == b"hello"
        proxy.blackhole()
        with pytest.raises(TimeoutError):  # an open connection: silence, not an error
            roundtrip(old, b"during")
        new = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)  # accepted, never served
        with pytest.raises(TimeoutError):
            roundtrip(new, b"new")
        assert proxy.open_connections() == 2
        proxy.forward()
        # What was held flows once the path is back, on both connections, in order.
        assert old.recv(1024) == b"during" and new.recv(1024) == b"new"
        assert roundtrip(old, b"after") == b"after"
        old.close()
        new.close()


def test_garbage_reset_and_reject(echo: tuple[str, int]) -> None:
    with FaultProxy(echo) as proxy:
        kept = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert roundtrip(kept, b"x") == b"x"
        proxy.garbage(b"HTTP/1.1 200 OK\r\n\r\nnot json")
        assert kept.recv(1024) == b""  # a keep-alive connection is closed: its client must reconnect
        g = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert roundtrip(g, b"GET / HTTP/1.1\r\n\r\n") == b"HTTP/1.1 200 OK\r\n\r\nnot json"
        assert g.recv(1024) == b""  # and closed
        proxy.forward()
        again = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert roundtrip(again, b"y") == b"y"
        assert proxy.reset() >= 2  # both sides of `again`
        assert again.recv(1024) == b""
        proxy.reject()
        r = socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        assert r.recv(1024) == b""
        wait_for(lambda: proxy.open_connections() == 0, timeout=5, message="every connection closed")


def test_upstream_down_closes_the_client() -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        dead = s.getsockname()  # closed on leaving: nobody listens there any more
    with FaultProxy(dead) as proxy:
        c = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        c.sendall(b"x")
        assert c.recv(1024) == b""
