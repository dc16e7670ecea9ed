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
import ssl
import tempfile
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

HANDSHAKE_TIMEOUT = 10.0
IDLE_TIMEOUT = 60.0
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
        self._server: ThreadingHTTPServer | None = None
        # What serves the requests; the benchmark swaps in Python's defaults as its baseline.
        self._server_class: type[_Server] = _Server
        self._handler_class: type[_Handler] = _Handler
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
        jvm = query.get("jvm", [None])[0]
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

    def authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.secret.reveal()}".encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver listens with a backlog of 5: when a stage starts, hundreds of executor JVMs connect
    # at once, and with 5 a burst of 300 TLS fetches lost 60 to handshake timeouts. The kernel caps this
    # at net.core.somaxconn (4096 on current Linux).
    request_queue_size = 1024
    service: BrokerService
    ssl_context: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow or hostile
        # client cannot stall the accept loop.
        if self.ssl_context is not None:
            request.settimeout(HANDSHAKE_TIMEOUT)
            request = self.ssl_context.wrap_socket(request, server_side=True)
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("broker: dropped a connection from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT  # a client that connects and says nothing is dropped, not held forever
    # Buffer the reply so headers and body leave in one TLS record and one TCP segment: written
    # separately, Nagle's algorithm and the client's delayed ACK added 40 ms to every fetch.
    wbufsize = 16 * 1024
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        service = self.server.service
        if not service.authorized(self.headers.get("Authorization")):
            self._reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong broker secret"})
            return
        url = urlsplit(self.path)
        if url.path != "/v1/token":
            self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {url.path!r}"})
            return
        query = parse_qs(url.query)
        endpoint = query.get("endpoint", [None])[0]
        instance = query.get("instance", [None])[0]
        force = query.get("force", ["false"])[0] == "true"
        refused = query.get("refused", [None])[0]
        try:
            cred = service.broker.credential(
                endpoint=endpoint, instance=instance, force=force, refused=refused
            )
        except (InvalidEndpointNameError, ValueError) as e:
            self._reply(HTTPStatus.BAD_REQUEST, {"error": str(e)})
            return
        except EndpointNotFoundError as e:
            self._reply(HTTPStatus.NOT_FOUND, {"error": str(e)})
            return
        except PermissionDeniedError as e:
            self._reply(HTTPStatus.FORBIDDEN, {"error": str(e)})
            return
        except Exception as e:  # any mint failure must reach the executor as a message, not a hang
            log.warning("Lakebase token broker could not serve a credential: %s", e)
            self._reply(HTTPStatus.BAD_GATEWAY, {"error": str(e)})
            return
        service.record(query, served=True)
        now = service.broker.now()  # the clock the credential's times are on
        self._reply(
            HTTPStatus.OK,
            {
                "token": cred.token.reveal(),
                "expires_in_ms": max(int((cred.expires_at - now) * 1000), 0),
                "refresh_in_ms": max(int((cred.refresh_at - now) * 1000), 0),
            },
        )

    def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        # One request per connection (what the JVM client sends): no idle keep-alive threads.
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds only the path and the target name; headers (the secret) are
        # never logged.
        log.debug("broker %s - %s", self.address_string(), format % args)


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


def shared_broker_service(
    workspace: WorkspaceClient | None = None, *, host: str | None = None
) -> BrokerService:
    """The process's running broker service for this workspace identity, started on first use.

    Keyed by workspace host and principal (what a token is valid for) and bind address, so every
    ``lakebase_options(...)`` call of a notebook shares one broker and one token cache.
    """
    global _default_workspace
    bind = host or default_bind_host()
    with _shared_lock:
        if workspace is None:
            if _default_workspace is None:
                from databricks.sdk import WorkspaceClient

                _default_workspace = WorkspaceClient()
            workspace = _default_workspace
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
