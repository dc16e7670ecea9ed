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
import json
import logging
import secrets
import socketserver
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .._deprecations import renamed_workspace
from ..errors import (
    EndpointNotFoundError,
    InvalidEndpointNameError,
    LakebaseSparkError,
    PermissionDeniedError,
)
from ..redaction import install_py4j_log_redaction, register_secret
from ..sessions import active_session, broker_bind_host, is_stopped
from ..tokens.broker import TokenBroker
from ..tokens.credentials import Secret
from ._http import (
    ERROR,
    EXPIRES_IN_MS,
    JVM,
    JVM_COUNTERS,
    MAX_JVM_REPORTS,
    REFRESH_IN_MS,
    REFUSED,
    TOKEN,
    TOKEN_PATH,
    BrokerHttpServer,
    BrokerRequestHandler,
    is_loopback,
    self_signed_context,
)

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = [
    "ERROR",
    "EXPIRES_IN_MS",
    "JVM",
    "JVM_COUNTERS",
    "REFRESH_IN_MS",
    "REFUSED",
    "TOKEN",
    "TOKEN_PATH",
    "BrokerService",
    "shared_broker_service",
    "stop_shared_broker_services",
]

log = logging.getLogger(__name__)


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
        self.tls = (not is_loopback(host)) if tls is None else tls
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
        self._server: BrokerHttpServer | None = None
        # What serves the requests; the benchmark swaps in Python's defaults as its baseline.
        self._server_class: type[BrokerHttpServer] = BrokerHttpServer
        self._handler_class: type[socketserver.BaseRequestHandler] = BrokerRequestHandler
        self._thread: threading.Thread | None = None
        #: POST routes (path -> handler of the JSON request), added by what the JVMs coordinate with the
        #: driver (the catalog's writes, ``sql/writes.py``).
        self._routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}

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
            server.ssl_context, self.fingerprint = self_signed_context(self.host)
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

    def route(self, path: str, handler: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """Serve ``POST path`` (to callers with the secret) with ``handler(request) -> answer``.

        The handler's :class:`LakebaseSparkError` answers 409 with its message (written for users);
        anything else 500 with the exception's type and message.
        """
        self._routes[path] = handler

    def serves(self, path: str) -> bool:
        return path in self._routes

    def post(self, target: str, authorization: str | None, body: bytes) -> tuple[HTTPStatus, dict[str, Any]]:
        """The reply to ``POST target`` with a JSON ``body``."""
        if not self.authorized(authorization):
            return HTTPStatus.UNAUTHORIZED, {ERROR: "missing or wrong broker secret"}
        handler = self._routes.get(urlsplit(target).path)
        if handler is None:
            return HTTPStatus.NOT_FOUND, {ERROR: f"no such path {target[:200]!r}"}
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("not a JSON object")
        except ValueError as e:
            return HTTPStatus.BAD_REQUEST, {ERROR: f"the request is not a JSON object ({e})"}
        try:
            return HTTPStatus.OK, handler(request)
        except LakebaseSparkError as e:
            return HTTPStatus.CONFLICT, {ERROR: str(e)}
        except Exception as e:
            log.warning("Lakebase broker: POST %s failed", target[:200], exc_info=True)
            return HTTPStatus.INTERNAL_SERVER_ERROR, {ERROR: f"{type(e).__name__}: {e}"}

    def authorized(self, header: str | None) -> bool:
        expected = f"Bearer {self.secret.reveal()}".encode()
        return header is not None and hmac.compare_digest(header.encode(), expected)


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
    workspace_client: WorkspaceClient | None = None,
    *,
    host: str | None = None,
    workspace: WorkspaceClient | None = None,
) -> BrokerService:
    """The process's running broker service for this workspace identity, started on first use.

    ``workspace=`` is the deprecated name of ``workspace_client=`` (the name every other call uses).

    Keyed by workspace host and principal (what a token is valid for) and bind address, so every
    ``lakebase_options(...)`` call of a notebook shares one broker and one token cache.
    """
    bind = host or default_bind_host()
    workspace = renamed_workspace(workspace_client, workspace) or default_workspace_client()
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
