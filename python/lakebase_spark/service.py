"""Broker service: serves the broker's tokens over HTTP(S) to the JVM provider on driver and executors.

Executors have no Databricks identity of their own, so they ask the driver. The service answers
``GET /v1/token?endpoint=<name>`` (or ``?instance=<name>``) with
``{"token", "expires_in_ms", "refresh_in_ms"}``: relative times, so clock skew between the driver and
executor hosts does not matter. Callers must send ``Authorization: Bearer <secret>``, a random secret
made per service; anything else gets 401. Off loopback the service speaks TLS with a certificate
made at start, whose SHA-256 fingerprint travels in the Spark options and is pinned by the JVM.
"""

from __future__ import annotations

import atexit
import hmac
import ipaddress
import json
import logging
import secrets
import socketserver
import ssl
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .broker import TokenBroker
from .certificates import self_signed_certificate
from .credentials import Secret
from .errors import (
    EndpointNotFoundError,
    InvalidEndpointNameError,
    PermissionDeniedError,
)
from .redaction import install_py4j_log_redaction, register_secret
from .sessions import active_session, broker_bind_host, is_stopped

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["BrokerService", "shared_broker_service", "stop_shared_broker_services"]

log = logging.getLogger(__name__)

#: Seconds a connection may take for its TLS handshake, and then for its request.
REQUEST_TIMEOUT = 10.0
#: Threads serving connections (each one fetch: a handshake, a request, an answer).
WORKERS = 64
MAX_LINE = 8 * 1024
MAX_HEADERS = 100
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


class BrokerService:
    """An HTTP(S) front for a :class:`TokenBroker`; start with :meth:`start` or ``with``.

    Parameters
    ----------
    broker:
        Where tokens come from.
    host:
        Address to bind. Loopback suits local Spark (``local[*]``, ``local-cluster``); on a cluster,
        bind the driver's own address (``spark.driver.host``), never ``0.0.0.0`` by default.
    tls:
        ``None`` means TLS exactly when ``host`` is not loopback.
    """

    def __init__(
        self,
        broker: TokenBroker,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool | None = None,
    ) -> None:
        self.broker = broker
        self.host = host
        self.port = port
        self.tls = (not _is_loopback(host)) if tls is None else tls
        self.secret = Secret(secrets.token_urlsafe(32))
        # py4j logs Spark options at DEBUG, and the options carry this secret: mask it there.
        register_secret(self.secret.reveal())
        install_py4j_log_redaction()
        self.fingerprint: str | None = None
        #: Token requests answered with a token (what executors' JVM caches did not absorb).
        self.tokens_served = 0
        # The provider counters each JVM sent with its last token request, by random JVM id.
        self._jvm_reports: dict[str, dict[str, int]] = {}
        self._stats_lock = threading.Lock()
        self._server: _Server | None = None
        # What serves the requests; the benchmark swaps in Python's defaults as its baseline.
        self._server_class: type[_Server] = _Server
        self._handler_class: type[socketserver.BaseRequestHandler] = _Handler
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self._server else "stopped"
        return f"BrokerService(url={self.url!r}, {state})"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> BrokerService:
        if self._server is not None:
            return self
        server = self._server_class((self.host, self.port), self._handler_class)
        server.service = self
        if self.tls:
            server.ssl_context, self.fingerprint = _self_signed_context(self.host)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=f"lakebase-broker:{self.port}", daemon=True
        )
        self._thread.start()
        log.info("Lakebase token broker listening on %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            self.broker.close()
            log.info("Lakebase token broker on %s stopped", self.url)

    def stats(self) -> dict[str, float | int | None]:
        """The broker's counters plus the JVM providers' (as of each JVM's last token request).

        ``mints``, ``cache_hits``, ``stale_served``, ``mint_failures``, ``refresh_failures``,
        ``refused_tokens``, ``seconds_left`` (on the newest token), ``tokens_served``, ``jvms`` (that
        asked), and the providers' sums: ``logins``, ``broker_fetches``, ``auth_retries``,
        ``cold_start_retries``, ``connection_limit_retries``, ``broker_retries``.
        """
        out: dict[str, float | int | None] = dict(vars(self.broker.stats))
        with self._stats_lock:
            out["tokens_served"] = self.tokens_served
            out["jvms"] = len(self._jvm_reports)
            for name in JVM_COUNTERS:
                out[name] = sum(report.get(name, 0) for report in self._jvm_reports.values())
        return out

    def record(self, query: dict[str, list[str]], served: bool) -> None:
        """Count a served token and keep the JVM's counters from the request's query."""
        jvm = query.get(JVM, [None])[0]
        with self._stats_lock:
            if served:
                self.tokens_served += 1
            if jvm and (jvm in self._jvm_reports or len(self._jvm_reports) < MAX_JVM_REPORTS):
                self._jvm_reports[jvm] = {
                    name: int(value[0])
                    for name in JVM_COUNTERS
                    if (value := query.get(name)) and value[0].isdigit()
                }

    def __enter__(self) -> BrokerService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, target: str, authorization: str | None) -> tuple[HTTPStatus, dict[str, Any]]:
        """The reply to ``GET target``: a status and a JSON body (the protocol, apart from HTTP)."""
        if not self.authorized(authorization):
            return HTTPStatus.UNAUTHORIZED, {ERROR: "missing or wrong broker secret"}
        url = urlsplit(target)
        if url.path != TOKEN_PATH:
            return HTTPStatus.NOT_FOUND, {ERROR: f"no such path {url.path[:200]!r}"}
        query = parse_qs(url.query)
        try:
            cred = self.broker.credential(
                endpoint=query.get("endpoint", [None])[0],
                instance=query.get("instance", [None])[0],
                force=query.get("force", ["false"])[0] == "true",
                refused=query.get(REFUSED, [None])[0],
            )
        except (InvalidEndpointNameError, ValueError) as e:
            return HTTPStatus.BAD_REQUEST, {ERROR: str(e)}
        except EndpointNotFoundError as e:
            return HTTPStatus.NOT_FOUND, {ERROR: str(e)}
        except PermissionDeniedError as e:
            return HTTPStatus.FORBIDDEN, {ERROR: str(e)}
        except Exception as e:  # any mint failure must reach the executor as a message, not a hang
            log.warning("Lakebase token broker could not serve a credential: %s", e)
            return HTTPStatus.BAD_GATEWAY, {ERROR: str(e)}
        self.record(query, served=True)
        now = self.broker.now()  # the clock the credential's times are on
        return HTTPStatus.OK, {
            TOKEN: cred.token.reveal(),
            EXPIRES_IN_MS: max(int((cred.expires_at - now) * 1000), 0),
            REFRESH_IN_MS: max(int((cred.refresh_at - now) * 1000), 0),
        }

    def authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.secret.reveal()}".encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)


class _Server(socketserver.TCPServer):
    """Accepts on one thread and serves each connection (TLS handshake included) on a worker pool.

    When a stage starts, a thousand executor JVMs connect at once. socketserver's listen backlog of 5
    lost 60 of 300 such TLS fetches to handshake timeouts (the kernel caps this at
    net.core.somaxconn, 4096 on current Linux); and a thread per connection made 2,000 threads
    fight for the GIL, where a fixed pool serves the same herd with a quarter less CPU.
    """

    allow_reuse_address = True
    request_queue_size = 1024
    service: BrokerService
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


class _Handler(socketserver.StreamRequestHandler):
    """One ``GET`` per connection, parsed with no more than the protocol needs.

    Not ``http.server``: its header parsing (the ``email`` package), date header and per-request
    logging were a third of the broker's CPU per fetch in a herd.
    """

    server: _Server
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
        if parts[0] != "GET":
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {ERROR: f"method {parts[0][:16]!r} not allowed"})
            return
        status, body = self.server.service.answer(parts[1], headers.get("authorization"))
        # The request target holds the path, the target's name and counters; headers (the secret)
        # are never logged.
        log.debug("broker %s - GET %s -> %d", self.client_address[0], parts[1][:300], status)
        self._reply(status, body)

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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _self_signed_context(host: str) -> tuple[ssl.SSLContext, str]:
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


_shared_lock = threading.Lock()
_shared: dict[tuple[str, str, str], BrokerService] = {}
_default_workspace: WorkspaceClient | None = None  # WorkspaceClient() resolves config: do it once


def default_workspace_client() -> WorkspaceClient:
    """The process's ``WorkspaceClient()`` (the environment's Databricks auth), made on first use."""
    global _default_workspace
    with _shared_lock:
        if _default_workspace is None:
            from databricks.sdk import WorkspaceClient

            _default_workspace = WorkspaceClient()
        return _default_workspace


def shared_broker_service(
    workspace: WorkspaceClient | None = None, *, host: str | None = None
) -> BrokerService:
    """The process's running broker service for this workspace identity, started on first use.

    Keyed by workspace host and principal (what a token is valid for) and bind address, so every
    ``lakebase_options(...)`` call of a notebook shares one broker and one token cache.
    """
    bind = host or default_bind_host()
    workspace = workspace or default_workspace_client()
    with _shared_lock:
        broker = TokenBroker(workspace)
        key = (broker.host, broker.principal, bind)
        service = _shared.get(key)
        if service is None or not service.running:
            service = BrokerService(broker, host=bind).start()
            _shared[key] = service
            if len(_shared) == 1:
                atexit.register(stop_shared_broker_services)
            _stop_with_spark(service)
        return service


def stop_shared_broker_services() -> None:
    """Stop every broker service :func:`shared_broker_service` started."""
    with _shared_lock:
        services = list(_shared.values())
        _shared.clear()
    for service in services:
        service.stop()


def _stop_with_spark(service: BrokerService, poll_seconds: float = 1.0) -> None:
    """Stop ``service`` when the active Spark session stops (PySpark has no stop hook to register).

    A classic session stops with its SparkContext; a Spark Connect session when it is stopped.
    """
    spark = active_session()
    if spark is None:
        return

    def watch() -> None:
        while service.running:
            if is_stopped(spark):
                service.stop()
                return
            time.sleep(poll_seconds)

    threading.Thread(target=watch, name="lakebase-broker-watch", daemon=True).start()


def default_bind_host() -> str:
    """Loopback when Spark runs on this machine only; otherwise the driver's own address.

    Raises :class:`BrokerError` for a Spark Connect client whose driver is another machine.
    """
    return broker_bind_host(active_session())
