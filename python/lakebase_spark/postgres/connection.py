"""psycopg connections to a Lakebase database with a broker token, for the package's own driver-side SQL.

The writer's table checks and final commits, the sharding planner and routing all log in the way the
JVM provider does: TLS always, the current principal as the role, a token from the same broker (so
Python and Spark share one token cache), and one retry with a new token when the database refuses a
cached one.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DatabaseConnectionError, InvalidArgumentError, MissingDependencyError, TLSRequiredError
from ..serving.service import BrokerService, shared_broker_service
from ..targets import Address, Target

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient

    from ..tokens.broker import TokenBroker
    from ..tokens.credentials import Credential

__all__ = ["connect", "login", "psycopg_params", "require_psycopg", "resolve_address"]

log = logging.getLogger(__name__)

APPLICATION_NAME = "lakebase-spark"
# Lakebase refuses logins without TLS; these libpq modes never fall back to plain text.
TLS_MODES = ("require", "verify-ca", "verify-full")
#: How long a login waits for a database that is starting (the JVM provider's default as well) ...
COLD_START_TIMEOUT = 30.0
#: ... and for a free connection slot when the compute's max_connections is reached (SQLSTATE 53300).
CONNECTION_LIMIT_TIMEOUT = 60.0
FIRST_DELAY = 0.25
MAX_DELAY = 4.0
#: SQLSTATEs of a refused token (replaced once), of a database starting or suspending (retried within
#: the cold-start budget) and of a full compute (retried within the connection-limit budget). The JVM's
#: LoginRetry has the same lists (tests/test_contract.py).
AUTH_SQLSTATES = ("28P01", "28000")
STARTING_SQLSTATES = ("57P03", "57P01")
CONNECTION_LIMIT_SQLSTATE = "53300"


def require_psycopg(purpose: str) -> Any:
    """The psycopg module, or a clear error naming what needs it and how to install it."""
    try:
        import psycopg
    except ImportError as e:
        raise MissingDependencyError(
            f"{purpose} needs psycopg 3: pip install 'psycopg[binary]' (or lakebase-spark[testing])"
        ) from e
    return psycopg


def connect(
    *,
    endpoint: str | None = None,
    instance: str | None = None,
    database: str,
    tokens: TokenBroker | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    port: int | None = None,
    label: str | None = None,
    cold_start_timeout: float = COLD_START_TIMEOUT,
    connection_limit_timeout: float = CONNECTION_LIMIT_TIMEOUT,
    address: Address | None = None,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """A psycopg connection to ``database`` on an endpoint (or instance), with a token from the broker.

    ``tokens`` (a :class:`~.broker.TokenBroker`; else the process's shared broker for
    ``workspace_client``) resolves the host (unless ``address`` says it already) and supplies the token.
    ``broker`` (a served :class:`~.service.BrokerService`, whose tokens were all it used) is deprecated:
    pass ``tokens=service.broker``. ``port`` overrides the resolved port;
    ``label`` names the database in errors (e.g. a shard's name); ``kwargs`` go to
    :func:`psycopg.connect` (e.g. ``autocommit=True``) and override the defaults ``sslmode="require"``,
    ``application_name`` and ``connect_timeout=10``.

    Logins follow the JVM provider's policy (``LoginRetry.java``): a refused token is replaced once
    (SQLSTATE 28P01/28000); a database that is starting (scale-to-zero wake-up, a restart: 57P03,
    connection refused or dropped) is retried with jittered backoff for up to ``cold_start_timeout``
    seconds, and a full one (53300, too many connections) for up to ``connection_limit_timeout``
    seconds (0: no retry), then fails naming the limit and what to do.
    """
    psycopg = require_psycopg("connecting to Lakebase from Python")
    target = Target.of(endpoint, instance)  # exactly one, well-formed: before anything else
    if "password" in kwargs:
        raise InvalidArgumentError(
            "lakebase-spark logs in with a token from the broker; do not pass password=", argument="password"
        )
    sslmode = kwargs.get("sslmode", "require")
    if sslmode not in TLS_MODES:
        raise TLSRequiredError(
            f"sslmode={sslmode!r} would allow a connection without TLS, which Lakebase refuses: "
            f"use one of {', '.join(TLS_MODES)}"
        )
    if broker is not None:
        warnings.warn(
            "connect(broker=<BrokerService>) is deprecated: pass tokens=<TokenBroker> (service.broker)",
            DeprecationWarning,
            stacklevel=2,
        )
        if tokens is None:
            tokens = broker.broker
    if tokens is None:
        tokens = shared_broker_service(workspace_client).broker
    if address is None:
        address = resolve_address(tokens, endpoint=endpoint, instance=instance, port=port)
    user = kwargs.pop("user", None) or tokens.principal
    params = psycopg_params(address, database, user, kwargs)
    name = f"{label} " if label else ""
    where = f"{name}({address.host}:{address.port}, database {database!r}) as {user!r}"
    source = tokens  # a name the closure keeps (mypy does not narrow a captured parameter)
    return login(
        lambda password: _connect(psycopg, password, params),
        lambda refused: source.credential(**target.keywords(), refused=refused),
        where,
        (psycopg.OperationalError,),
        cold_start_timeout=cold_start_timeout,
        connection_limit_timeout=connection_limit_timeout,
    )


def psycopg_params(address: Address, database: str, user: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """``psycopg.connect`` arguments: TLS, the package's application name and a connect timeout unless
    ``overrides`` say otherwise; where and as whom are never overridden."""
    return {
        "sslmode": "require",
        "application_name": APPLICATION_NAME,
        "connect_timeout": 10,
        **overrides,
        "host": address.host,
        "port": address.port,
        "dbname": database,
        "user": user,
    }


_C = TypeVar("_C")


def login(
    open_connection: Callable[[str], _C],
    credential_for: Callable[[str | None], Credential],
    where: str,
    errors: tuple[type[BaseException], ...],
    *,
    cold_start_timeout: float = COLD_START_TIMEOUT,
    connection_limit_timeout: float = CONNECTION_LIMIT_TIMEOUT,
) -> _C:
    """``open_connection(password)`` under the login policy (see :func:`connect`), for any driver whose
    login failures are ``errors`` carrying a ``sqlstate`` (psycopg, ADBC). ``where`` names the database
    in errors; only a failure's message leaves this function (a driver's exception may hold the password)."""
    refused: str | None = None
    auth_retried = False
    started = time.monotonic()
    delays = {"starting": FIRST_DELAY, "full": FIRST_DELAY}
    attempt = 0
    while True:
        attempt += 1
        credential = credential_for(refused)  # refused: the digest of a token the database refused
        log.debug("connecting to %s (attempt %d)", where, attempt)
        try:
            return open_connection(credential.token.reveal())
        except errors as e:
            failure, kind = _without(str(e), credential.token.reveal()), _failure_kind(e)
        if kind == "auth" and not auth_retried:
            auth_retried, refused = True, credential.digest()
            log.info("login to %s was refused with a cached token; retrying with a new one", where)
            continue
        if kind not in delays:
            break
        budget = connection_limit_timeout if kind == "full" else cold_start_timeout
        wait = delays[kind] * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
        if time.monotonic() + wait > started + max(budget, 0.0):
            if kind == "full":
                raise DatabaseConnectionError(_connection_limit(where, failure, connection_limit_timeout))
            if attempt > 1:
                raise DatabaseConnectionError(
                    _cold_start_exhausted(where, failure, attempt, cold_start_timeout)
                )
            break
        log.info(
            "%s is %s; retrying in %.2f s",
            where,
            "at its connection limit" if kind == "full" else "not accepting logins yet (starting up?)",
            wait,
        )
        time.sleep(wait)
        delays[kind] = min(delays[kind] * 2, MAX_DELAY)
    raise DatabaseConnectionError(f"could not connect to {where}: {failure}")


def _without(message: str, secret: str) -> str:
    """A driver's message with the password masked, should the driver have echoed it: as given, or
    percent-encoded as it stands in a connection URI (ADBC's)."""
    if not secret:
        return message
    from urllib.parse import quote

    for form in {secret, quote(secret, safe=""), quote(secret)}:
        message = message.replace(form, "***")
    return message


def _cold_start_exhausted(where: str, failure: str, attempts: int, waited: float) -> str:
    # The JVM's LoginRetry.coldStartExhausted says the same.
    return (
        f"could not log in to {where} after {attempts} attempts over {waited:g} s (the endpoint may be "
        "starting from scale-to-zero, stopped, or unreachable from this host; raise cold_start_timeout, "
        f"lakebase.coldstart.timeout.ms on Spark, to wait longer): {failure}"
    )


def _connection_limit(where: str, failure: str, waited: float) -> str:
    how_long = f"for {waited:g} s" if waited > 0 else "(retries are off)"
    return (
        f"{where} refused new connections {how_long} with SQLSTATE 53300: the compute's connection "
        "limit (max_connections) is reached. Each running Spark task holds one connection, and a "
        "Lakebase compute allows about 100 per 0.5 CU (104 at 0.5 CU, 209 at 1 CU, 419 at 2 CU). "
        "Lower the job's concurrency (numPartitions on reads, num_partitions= on lakebase_spark.write, "
        "fewer executor cores), use a larger compute, or wait longer (lakebase.connlimit.timeout.ms). "
        f"The server said: {failure}"
    )


def resolve_address(
    tokens: TokenBroker, *, endpoint: str | None, instance: str | None, port: int | None = None
) -> Address:
    """Where the endpoint's (or instance's) Postgres listens: one workspace API call."""
    return Target.of(endpoint, instance).resolve(tokens.workspace, port=port)


def _connect(module: Any, password: str, params: dict[str, Any]) -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] = module.connect(password=password, **params)
    return conn


def _failure_kind(e: BaseException) -> str:
    """``auth``, ``full`` (53300), ``starting`` (cold start or restart) or ``other``."""
    if _is_auth_failure(e):
        return "auth"
    text = str(e).lower()
    if getattr(e, "sqlstate", None) == CONNECTION_LIMIT_SQLSTATE or any(
        # libpq reports login failures without a SQLSTATE: the server's words for 53300.
        sign in text
        for sign in ("too many clients", "too many connections", "remaining connection slots are reserved")
    ):
        return "full"
    return "starting" if _is_starting(e) else "other"


def _is_starting(e: BaseException) -> bool:
    """A database that is not up yet, or went away: worth retrying within the cold-start budget."""
    text = str(e).lower()
    return getattr(e, "sqlstate", None) in STARTING_SQLSTATES or any(
        sign in text
        for sign in (
            "starting up",
            "connection refused",
            "server closed the connection unexpectedly",
            "shutting down",
            "terminating connection",
        )
    )


def _is_auth_failure(e: BaseException) -> bool:
    # libpq reports refused logins without a SQLSTATE; servers say "password/LDAP authentication failed".
    return getattr(e, "sqlstate", None) in AUTH_SQLSTATES or "authentication failed" in str(e)
