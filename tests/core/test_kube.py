"""kube.py's edges that need no cluster: the API's refusal parsed into words and fields, and a black-holed
connection failing within the read timeout instead of hanging (a real socket that accepts and never answers)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelfleet.kube import Kube, KubeError
from modelfleet.kubeerror import from_api_exception as _wrap


def test_a_422_names_the_field_in_the_api_servers_words() -> None:
    body = {
        "kind": "Status",
        "status": "Failure",
        "message": 'Deployment.apps "m" is invalid: spec.template.spec.containers[0].image: Required value',
        "reason": "Invalid",
        "details": {"causes": [{"reason": "FieldValueRequired", "field": "spec.template.spec.containers[0].image"}]},
        "code": 422,
    }
    exc = ApiException(status=422, reason="Unprocessable Entity")
    exc.body = json.dumps(body)
    err = _wrap(exc, "applying Deployment n/m")
    assert err.refused and not err.retryable
    assert err.fields == ("spec.template.spec.containers[0].image",)
    assert err.api_message == body["message"]


def test_a_terminating_namespace_is_told_apart_from_a_refusal() -> None:
    # The body the NamespaceLifecycle admission plugin returns (seen from a 1.34 API server in e2e).
    body = {
        "kind": "Status",
        "status": "Failure",
        "message": 'services "m" is forbidden: unable to create new content in namespace t '
                   "because it is being terminated",
        "reason": "Forbidden",
        "details": {"name": "m", "kind": "services",
                    "causes": [{"reason": "NamespaceTerminating", "message": "namespace t is being terminated",
                                "field": "metadata.namespace"}]},
        "code": 403,
    }
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps(body)
    assert _wrap(exc, "applying Service t/m").namespace_terminating
    quota = ApiException(status=403, reason="Forbidden")
    quota.body = json.dumps({**body, "message": "exceeded quota", "details": {"causes": []}})
    assert not _wrap(quota, "applying Deployment t/m").namespace_terminating


@pytest.mark.parametrize(("status", "retryable", "refused"), [(403, False, True), (409, True, False),
                                                              (500, True, False), (429, True, False)])
def test_status_classes(status: int, retryable: bool, refused: bool) -> None:
    exc = ApiException(status=status, reason="x")
    exc.body = "not json"
    err = _wrap(exc, "w")
    assert (err.retryable, err.refused) == (retryable, refused)


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP listener that accepts connections and never sends a byte (a half-open path)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    srv.close()


def _kube(host: str, timeout: tuple[float, float]) -> Kube:
    configuration = client.Configuration()
    configuration.host = host
    configuration.retries = False
    return Kube(client.ApiClient(configuration), timeout=timeout)


def test_a_black_holed_call_fails_within_its_read_timeout(black_hole: str) -> None:
    kube = _kube(black_hole, (1, 1))
    started = time.monotonic()
    with pytest.raises(KubeError) as info:
        kube.get_llm("n", "m")
    elapsed = time.monotonic() - started
    assert info.value.status == 0 and info.value.retryable, info.value
    assert elapsed < 5, f"the call hung {elapsed:.1f}s despite a 1 s read timeout"


def test_a_refused_connection_is_a_retryable_kube_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again on exit: nothing listens
    with pytest.raises(KubeError) as info:
        _kube(f"http://127.0.0.1:{port}", (1, 1)).get_lease("n", "l")
    assert info.value.status == 0 and info.value.retryable


def test_an_event_reaches_the_api_with_the_owner_reason_and_message() -> None:
    """Builds the Event from the client's models and sends it (a package split once shadowed them)."""
    import http.server

    received: list[tuple[str, dict[str, object]]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, body))
            out = json.dumps(body).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        owner = {"metadata": {"name": "llama", "namespace": "team-a", "uid": "u-1"}}
        _kube(f"http://127.0.0.1:{srv.server_address[1]}", (2, 2)).event(owner, "Warning", "DoesNotFit", "too big")
    finally:
        srv.shutdown()
        thread.join()
    assert len(received) == 1, received
    path, body = received[0]
    assert path == "/api/v1/namespaces/team-a/events", path
    assert (body["reason"], body["message"], body["type"]) == ("DoesNotFit", "too big", "Warning"), body
    assert body["involvedObject"] == {"apiVersion": "modelfleet.io/v1alpha1", "kind": "LLMDeployment",
                                      "name": "llama", "namespace": "team-a", "uid": "u-1"}, body
