"""Data-dependent routing: a live psycopg connection to the shard that holds a key.

The Python side of Azure's ``OpenConnectionForKey``: find the shard, resolve its Lakebase host, log in
with a database token from the token broker (the same cache Spark's JVMs use) and, when asked,
check the shard's local map before trusting the global one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..endpoints import resolve_endpoint, resolve_instance
from ..errors import TLSRequiredError
from ..service import BrokerService, shared_broker_service
from .errors import MissingDependencyError, ShardConnectionError
from .shard_map import RangeShardMap, Shard
from .store import validate_local

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient

__all__ = ["connect_for_key", "connect_shard"]

log = logging.getLogger(__name__)

APPLICATION_NAME = "lakebase-spark"
# Lakebase refuses logins without TLS; these libpq modes never fall back to plain text.
_TLS_MODES = ("require", "verify-ca", "verify-full")


def connect_shard(
    shard: Shard,
    *,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    port: int | None = None,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """A psycopg connection to ``shard``'s database, logged in as the current principal with a broker token.

    ``broker`` (or else the process's shared broker for ``workspace_client``) resolves the endpoint or
    instance host and supplies the token, so Python and Spark share one token cache. ``port`` overrides
    the resolved port; ``kwargs`` go to :func:`psycopg.connect` (e.g. ``autocommit=True``, ``sslrootcert``)
    and override the defaults ``sslmode="require"``, ``application_name`` and ``connect_timeout=10``.
    A login refused with a cached token is retried once with a new one.
    """
    try:
        import psycopg
    except ImportError as e:
        raise MissingDependencyError(
            "connecting to a shard needs psycopg 3: pip install 'psycopg[binary]'"
        ) from e
    if "password" in kwargs:
        raise ValueError("connect_shard logs in with a database token from the broker; do not pass password=")
    sslmode = kwargs.get("sslmode", "require")
    if sslmode not in _TLS_MODES:
        raise TLSRequiredError(
            f"sslmode={sslmode!r} would allow a connection without TLS, which Lakebase refuses: "
            f"use one of {', '.join(_TLS_MODES)}"
        )
    tokens = (broker if broker is not None else shared_broker_service(workspace_client)).broker
    if shard.endpoint is not None:
        address = resolve_endpoint(tokens.workspace, shard.endpoint, port=port)
    else:
        assert shard.instance is not None  # Shard guarantees exactly one of the two
        address = resolve_instance(tokens.workspace, shard.instance, port=port)
    user = kwargs.pop("user", None) or tokens.principal
    params: dict[str, Any] = {
        "sslmode": "require",
        "application_name": APPLICATION_NAME,
        "connect_timeout": 10,
        **kwargs,
        "host": address.host,
        "port": address.port,
        "dbname": shard.database,
        "user": user,
    }
    where = f"shard {shard.name!r} ({address.host}:{address.port}, database {shard.database!r}) as {user!r}"
    refused: str | None = None
    failure: str | None = None
    for attempt in (1, 2):
        credential = tokens.credential(endpoint=shard.endpoint, instance=shard.instance, refused=refused)
        log.debug("connecting to %s (attempt %d)", where, attempt)
        auth = False
        try:
            return psycopg.connect(password=credential.token.reveal(), **params)
        except psycopg.OperationalError as e:
            # Only the message leaves this block: the exception's pgconn holds the password.
            failure, auth = str(e), _is_auth_failure(e)
        if not auth or attempt == 2:
            break
        refused = credential.digest()
        log.info("login to %s was refused with a cached token; retrying with a new one", where)
    raise ShardConnectionError(f"could not connect to {where}: {failure}")


def _is_auth_failure(e: Exception) -> bool:
    # libpq reports refused logins without a SQLSTATE; servers say "password/LDAP authentication failed".
    return getattr(e, "sqlstate", None) in ("28P01", "28000") or "authentication failed" in str(e)


def connect_for_key(
    shard_map: RangeShardMap,
    key: object,
    *,
    validate: bool = False,
    schema: str = "public",
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """A connection to the shard holding ``key``: :meth:`RangeShardMap.shard_for_key` + :func:`connect_shard`.

    Raises :class:`KeyNotMappedError` or :class:`MappingOfflineError` from the map. With ``validate``,
    the shard's local map (in ``schema``) must hold the key's mapping, with the same range, online, else
    :class:`MappingValidationError` (the connection is closed): the global map in hand is stale or the
    range is being moved.
    """
    snapshot = shard_map.copy()  # one version for the lookup and the validation
    shard = snapshot.shard_for_key(key)
    mapping = snapshot.mapping_for_key(key)
    conn = connect_shard(shard, broker=broker, workspace_client=workspace_client, **kwargs)
    if validate:
        try:
            validate_local(conn, snapshot, mapping, schema=schema)
        except BaseException:
            conn.close()
            raise
    return conn
