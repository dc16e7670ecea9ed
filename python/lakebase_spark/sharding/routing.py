"""Data-dependent routing: a live psycopg connection to the shard that holds a key.

The Python side of Azure's ``OpenConnectionForKey``: find the shard, resolve its Lakebase host, log in
with a database token from the token broker (the same cache Spark's JVMs use) and, when asked,
check the shard's local map before trusting the global one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DatabaseConnectionError
from ..postgres.connection import connect, require_psycopg
from ..serving.service import BrokerService
from .errors import MissingDependencyError, ShardConnectionError
from .shard_map import RangeShardMap, Shard
from .store import validate_local

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient

__all__ = ["connect_for_key", "connect_shard"]


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
        require_psycopg("connecting to a shard")
    except ImportError as e:
        raise MissingDependencyError(str(e)) from e
    try:
        return connect(
            **shard.target.keywords(),
            database=shard.database,
            tokens=broker.broker if broker is not None else None,
            workspace_client=workspace_client,
            port=port,
            label=f"shard {shard.name!r}",
            **kwargs,
        )
    except DatabaseConnectionError as e:
        failure = str(e)
    # Raised outside the except block: no exception chain to carry anything but the message.
    raise ShardConnectionError(failure)


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
