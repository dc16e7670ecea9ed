"""The broker's wire protocol and HTTP(S) server: one ``GET /v1/token`` per connection, answered by a
:class:`~.service.BrokerService` (``answer``), on a fixed worker pool, TLS handshakes off the accept
loop. The protocol's names are checked against ``BrokerClient.java`` by ``tests/test_contract.py``."""

from __future__ import annotations

import ipaddress
import json
import logging
import socketserver
import ssl
import tempfile
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

from .certificates import self_signed_certificate

__all__ = [
    "ERROR",
    "EXPIRES_IN_MS",
    "JVM",
    "JVM_COUNTERS",
    "MAX_JVM_REPORTS",
    "REFRESH_IN_MS",
    "REFUSED",
    "TOKEN",
    "TOKEN_PATH",
    "BrokerHttpServer",
    "BrokerRequestHandler",
    "is_loopback",
    "self_signed_context",
]

log = logging.getLogger("lakebase_spark.serving.service")

#: Seconds a connection may take for its TLS handshake, and then for its request.
REQUEST_TIMEOUT = 10.0
#: Threads serving connections (each one fetch: a handshake, a request, an answer).
WORKERS = 64
MAX_LINE = 8 * 1024
MAX_HEADERS = 100
#: The largest POST body (a catalog write's plan request: a schema and a few names).
MAX_BODY = 1024 * 1024
# The protocol with BrokerClient.java (checked against it by tests/test_contract.py).
TOKEN_PATH = "/v1/token"  # noqa: S105 - a URL path, not a secret
#: The 200 answer's fields; any other status answers {ERROR: message}.
TOKEN, EXPIRES_IN_MS, REFRESH_IN_MS, ERROR = "token", "expires_in_ms", "refresh_in_ms", "error"
#: Query parameters besides the target (endpoint= or instance=): a refused token's digest, and the
#: reporting JVM's random id (its counters follow as name=value).
REFUSED, JVM = "refused", "jvm"
#: Counters the JVM provider reports with each token request (see ProviderStats.java).
JVM_COUNTERS = (
    "logins",
    "broker_fetches",
    "auth_retries",
    "cold_start_retries",
    "connection_limit_retries",
    "broker_retries",
)
MAX_JVM_REPORTS = 10_000  # bounds memory if something sends made-up JVM ids


class Answers(Protocol):
    """What serves the requests: the broker service."""

    def answer(self, target: str, authorization: str | None) -> tuple[HTTPStatus, dict[str, Any]]: ...

    def post(
        self, target: str, authorization: str | None, body: bytes
    ) -> tuple[HTTPStatus, dict[str, Any]]: ...

    def serves(self, path: str) -> bool: ...


class BrokerHttpServer(socketserver.TCPServer):
    """Accepts on one thread and serves each connection (TLS handshake included) on a worker pool.

    When a stage starts, a thousand executor JVMs connect at once. socketserver's listen backlog of 5
    lost 60 of 300 such TLS fetches to handshake timeouts (the kernel caps this at
    net.core.somaxconn, 4096 on current Linux); and a thread per connection made 2,000 threads
    fight for the GIL, where a fixed pool serves the same herd with a quarter less CPU.
    """

    allow_reuse_address = True
    request_queue_size = 1024
    service: Answers
    ssl_context: ssl.SSLContext | None = None

    def __init__(self, address: tuple[str, int], handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="lakebase-broker")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._serve, request, client_address)

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, on a worker, so a slow or hostile client cannot stall the
        # accept loop; it must finish within REQUEST_TIMEOUT.
        if self.ssl_context is not None:
            request.settimeout(REQUEST_TIMEOUT)
            request = self.ssl_context.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("broker: dropped a connection from %s", client_address, exc_info=True)


class BrokerRequestHandler(socketserver.StreamRequestHandler):
    """One ``GET`` (or, for the catalog's write coordination, one JSON ``POST``) per connection, parsed
    with no more than the protocol needs.

    Not ``http.server``: its header parsing (the ``email`` package), date header and per-request
    logging were a third of the broker's CPU per fetch in a herd.
    """

    server: BrokerHttpServer
    timeout = REQUEST_TIMEOUT  # a client that connects and says nothing is dropped, not waited for
    # Buffer the reply so it leaves in one TLS record and one TCP segment: written in pieces,
    # Nagle's algorithm and the client's delayed ACK added 40 ms to every fetch.
    wbufsize = 16 * 1024
    disable_nagle_algorithm = True

    def handle(self) -> None:
        request_line = self.rfile.readline(MAX_LINE + 1)
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n", b""):
                break
            if len(line) > MAX_LINE:
                self._reply(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, {ERROR: "header line too long"})
                return
            name, colon, value = line.decode("latin-1").partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        else:
            self._reply(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, {ERROR: "too many headers"})
            return
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or len(request_line) > MAX_LINE:
            self._reply(HTTPStatus.BAD_REQUEST, {ERROR: "not an HTTP/1.x request line"})
            return
        if parts[0] == "POST":
            self._post(parts[1], headers)
            return
        if parts[0] != "GET":
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {ERROR: f"method {parts[0][:16]!r} not allowed"})
            return
        status, body = self.server.service.answer(parts[1], headers.get("authorization"))
        # The request target holds the path, the target's name and counters; headers (the secret)
        # are never logged.
        log.debug("broker %s - GET %s -> %d", self.client_address[0], parts[1][:300], status)
        self._reply(status, body)

    def _post(self, target: str, headers: dict[str, str]) -> None:
        if not self.server.service.serves(target.partition("?")[0]):
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {ERROR: f"POST is not served at {target[:200]!r}"})
            return
        length = headers.get("content-length", "")
        if not length.isdigit() or int(length) > MAX_BODY:
            self._reply(
                HTTPStatus.BAD_REQUEST, {ERROR: f"a POST needs a Content-Length of at most {MAX_BODY}"}
            )
            return
        body = self.rfile.read(int(length))
        # The answer may take minutes (an overwrite's apply): the request was read, so wait without a limit.
        self.connection.settimeout(None)
        status, answer = self.server.service.post(target, headers.get("authorization"), body)
        log.debug("broker %s - POST %s -> %d", self.client_address[0], target[:300], status)
        self._reply(status, answer)

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"  # one request per connection, as the JVM client sends it
        )
        self.wfile.write(head.encode("latin-1") + data)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def self_signed_context(host: str) -> tuple[ssl.SSLContext, str]:
    """A server TLS context with a fresh self-signed certificate, and its SHA-256 fingerprint."""
    cert = self_signed_certificate([host], common_name="lakebase-spark broker")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Every executor JVM connects once per token and never resumes a session: tickets are wasted work.
    context.num_tickets = 0
    # ssl loads keys only from files: write them to a private temp dir, removed at once.
    with tempfile.TemporaryDirectory() as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write(cert_file, key_file)
        context.load_cert_chain(cert_file, key_file)
    return context, cert.fingerprint
