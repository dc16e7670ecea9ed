"""Stored shard maps: the global map in any Postgres database, and each shard's local map in its own.

The *global* map (table :data:`GLOBAL_TABLE`) is the source of truth, one row per map with its JSON
document, updated with optimistic concurrency on its version. A shard's *local* map (table
:data:`LOCAL_TABLE` in the shard's own database) lists the ranges that shard holds: routing checks it
before trusting a possibly stale global map (Azure's ``Validate``), so a range moved away is never read
from its old shard. Connections are the caller's; every identifier is quoted, every value a parameter.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from ..errors import InvalidArgumentError
from .errors import (
    MappingValidationError,
    MissingDependencyError,
    ShardMapNotFoundError,
    ShardMapVersionConflictError,
    UnknownShardError,
)
from .keys import key_from_json, key_to_json, quote_identifier
from .shard_map import RangeMapping, RangeShardMap

if TYPE_CHECKING:
    from types import ModuleType

    import psycopg

__all__ = [
    "GLOBAL_TABLE",
    "LOCAL_TABLE",
    "ShardMapCache",
    "load_global",
    "load_local",
    "save_global",
    "save_local",
    "update_global",
    "validate_local",
]

GLOBAL_TABLE = "lakebase_shard_map"
LOCAL_TABLE = "lakebase_shard_map_local"

_CREATE_GLOBAL = """
CREATE TABLE IF NOT EXISTS {table} (
    name text PRIMARY KEY,
    version bigint NOT NULL,
    key_type text NOT NULL,
    definition jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""

# Keys are stored as the JSON text of their lossless JSON form ('42', '"2026-01-01"'), with the key type
# alongside, so the table reads back without the global map.
_CREATE_LOCAL = """
CREATE TABLE IF NOT EXISTS {table} (
    map_name text NOT NULL,
    shard text NOT NULL,
    mapping_id text NOT NULL,
    key_type text NOT NULL,
    low text NOT NULL,
    high text,
    status text NOT NULL CHECK (status IN ('online', 'offline')),
    map_version bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (map_name, shard, mapping_id)
)"""


def _sql() -> ModuleType:
    """``psycopg.sql``, imported on use: the shard map itself does not need psycopg."""
    try:
        from psycopg import sql
    except ImportError as e:
        raise MissingDependencyError(
            "storing shard maps in Postgres needs psycopg 3: pip install 'psycopg[binary]'"
        ) from e
    return sql


def _table_exists(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    # to_regclass is NULL for a missing table (no error, so a caller's transaction stays usable).
    qualified = _sql().Identifier(schema, table).as_string(conn)
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,)).fetchone()
    return bool(row and row[0])


def _ensure_table(conn: psycopg.Connection[Any], schema: str, table: str, ddl: str) -> None:
    # Checked first so a principal that may write the table but not create in the schema can save.
    if not _table_exists(conn, schema, table):
        sql = _sql()
        conn.execute(sql.SQL(ddl).format(table=sql.Identifier(schema, table)))


def _where(conn: psycopg.Connection[Any], schema: str, table: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(table)} in database {conn.info.dbname!r}"


def save_global(
    conn: psycopg.Connection[Any],
    shard_map: RangeShardMap,
    *,
    expected_version: int | None = None,
    schema: str = "public",
) -> None:
    """Store ``shard_map`` in the global table (created if missing), in one transaction.

    With ``expected_version`` the save succeeds only if the stored map is still at that version (``0``:
    only if no map of that name is stored yet), else :class:`ShardMapVersionConflictError` and nothing
    changes. Without it the stored map is overwritten. The transaction commits at the end unless the
    connection is already inside one (then it is a savepoint and the caller commits).
    """
    if expected_version is not None and (
        isinstance(expected_version, bool) or not isinstance(expected_version, int) or expected_version < 0
    ):
        raise InvalidArgumentError(
            f"expected_version must be the version you loaded (an int >= 1), 0 for a new map, or None; "
            f"got {expected_version!r}",
            argument="expected_version",
        )
    sql = _sql()
    from psycopg.types.json import Jsonb

    table = sql.Identifier(schema, GLOBAL_TABLE)
    values = (shard_map.name, shard_map.version, shard_map.key_type, Jsonb(shard_map.to_dict()))
    insert = sql.SQL(
        "INSERT INTO {table} (name, version, key_type, definition, updated_at) VALUES (%s, %s, %s, %s, now())"
    ).format(table=table)
    with conn.transaction():
        _ensure_table(conn, schema, GLOBAL_TABLE, _CREATE_GLOBAL)
        if expected_version is None:
            conn.execute(
                insert
                + sql.SQL(
                    " ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version,"
                    " key_type = EXCLUDED.key_type, definition = EXCLUDED.definition,"
                    " updated_at = EXCLUDED.updated_at"
                ),
                values,
            )
            return
        if expected_version == 0:
            saved = conn.execute(insert + sql.SQL(" ON CONFLICT (name) DO NOTHING"), values).rowcount
        else:
            saved = conn.execute(
                sql.SQL(
                    "UPDATE {table} SET version = %s, key_type = %s, definition = %s, updated_at = now() "
                    "WHERE name = %s AND version = %s"
                ).format(table=table),
                (*values[1:], shard_map.name, expected_version),
            ).rowcount
        if saved != 1:
            row = conn.execute(
                sql.SQL("SELECT version FROM {table} WHERE name = %s").format(table=table), (shard_map.name,)
            ).fetchone()
            stored = "does not exist" if row is None else f"is at version {row[0]}"
            raise ShardMapVersionConflictError(
                f"shard map {shard_map.name!r} in {_where(conn, schema, GLOBAL_TABLE)} {stored}, not the "
                f"expected {'(absent)' if expected_version == 0 else f'version {expected_version}'}: it "
                "changed since you read it. Load it again, reapply your change and save with "
                "expected_version=<the version you loaded> (update_global does this)"
            )


def load_global(conn: psycopg.Connection[Any], name: str, *, schema: str = "public") -> RangeShardMap:
    """The map ``name`` from the global table; :class:`ShardMapNotFoundError` if it is not stored."""
    sql = _sql()
    with conn.transaction():
        if not _table_exists(conn, schema, GLOBAL_TABLE):
            raise ShardMapNotFoundError(
                f"no shard map {name!r}: there is no table {_where(conn, schema, GLOBAL_TABLE)}; "
                "store the map first with save_global(conn, shard_map)"
            )
        table = sql.Identifier(schema, GLOBAL_TABLE)
        row = conn.execute(
            sql.SQL("SELECT definition FROM {table} WHERE name = %s").format(table=table), (name,)
        ).fetchone()
        if row is None:
            names = [r[0] for r in conn.execute(sql.SQL("SELECT name FROM {} ORDER BY name").format(table))]
            raise ShardMapNotFoundError(
                f"no shard map {name!r} in {_where(conn, schema, GLOBAL_TABLE)} (stored maps: "
                f"{', '.join(map(repr, names)) or 'none'}); check the name or save it with save_global()"
            )
    document = row[0]
    return RangeShardMap.from_dict(json.loads(document) if isinstance(document, str) else document)


def update_global(
    conn: psycopg.Connection[Any],
    name: str,
    change: Callable[[RangeShardMap], object],
    *,
    schema: str = "public",
    retries: int = 3,
) -> RangeShardMap:
    """Load map ``name``, apply ``change`` to it and save it unless someone saved in between; retried.

    ``change`` mutates the map it is given (``lambda m: m.split(id, at)``); it is called again on a
    fresh copy after each version conflict, up to ``retries`` times. Returns the saved map.
    """
    for attempt in range(retries + 1):
        shard_map = load_global(conn, name, schema=schema)
        loaded = shard_map.version
        change(shard_map)
        try:
            save_global(conn, shard_map, expected_version=loaded, schema=schema)
        except ShardMapVersionConflictError:
            if attempt == retries:
                raise
            continue
        return shard_map
    raise AssertionError("unreachable")  # pragma: no cover


def save_local(
    conn: psycopg.Connection[Any], shard_map: RangeShardMap, shard: str, *, schema: str = "public"
) -> None:
    """Record in the shard's own database (``conn``) which ranges of ``shard_map`` it holds now.

    Replaces that map's rows for ``shard`` in :data:`LOCAL_TABLE` (created if missing), in one transaction.
    Run it on the shard after its rows were copied in (new ranges) and after ranges moved away.
    """
    if shard not in shard_map.shards:
        raise UnknownShardError(
            f"shard map {shard_map.name!r} has no shard {shard!r} (shards: "
            f"{', '.join(map(repr, sorted(shard_map.shards))) or 'none'}); pass the name of the shard "
            "whose database conn is connected to"
        )
    kt = shard_map.key_type
    rows = [
        (
            shard_map.name,
            shard,
            m.id,
            kt,
            json.dumps(key_to_json(kt, m.low)),
            None if m.high is None else json.dumps(key_to_json(kt, m.high)),
            m.status,
            shard_map.version,
        )
        for m in shard_map.mappings
        if m.shard == shard
    ]
    sql = _sql()
    table = sql.Identifier(schema, LOCAL_TABLE)
    with conn.transaction():
        _ensure_table(conn, schema, LOCAL_TABLE, _CREATE_LOCAL)
        conn.execute(
            sql.SQL("DELETE FROM {table} WHERE map_name = %s AND shard = %s").format(table=table),
            (shard_map.name, shard),
        )
        if rows:
            with conn.cursor() as cur:
                cur.executemany(
                    sql.SQL(
                        "INSERT INTO {table} (map_name, shard, mapping_id, key_type, low, high, status, "
                        "map_version) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                    ).format(table=table),
                    rows,
                )


def load_local(
    conn: psycopg.Connection[Any], map_name: str, *, shard: str | None = None, schema: str = "public"
) -> list[RangeMapping]:
    """The ranges of map ``map_name`` that the database of ``conn`` records holding, sorted by low.

    ``shard`` narrows to one shard's rows. ``[]`` if the local table does not exist.
    """
    sql = _sql()
    table = sql.Identifier(schema, LOCAL_TABLE)
    query = sql.SQL(
        "SELECT mapping_id, shard, key_type, low, high, status FROM {table} WHERE map_name = %s"
    ).format(table=table)
    params: tuple[str, ...] = (map_name,)
    if shard is not None:
        query += sql.SQL(" AND shard = %s")
        params += (shard,)
    with conn.transaction():
        if not _table_exists(conn, schema, LOCAL_TABLE):
            return []
        rows = conn.execute(query, params).fetchall()
    mappings = [
        RangeMapping(
            mapping_id,
            key_from_json(key_type, json.loads(low)),
            None if high is None else key_from_json(key_type, json.loads(high)),
            shard_name,
            status,
        )
        for mapping_id, shard_name, key_type, low, high, status in rows
    ]
    return sorted(mappings, key=lambda m: cast(Any, m.low))


def validate_local(
    conn: psycopg.Connection[Any], shard_map: RangeShardMap, mapping: RangeMapping, *, schema: str = "public"
) -> None:
    """Check that the shard ``conn`` is connected to holds ``mapping``, with the same range, online.

    Raises :class:`MappingValidationError` otherwise: the global map in hand is stale, or the range is
    being moved, or the shard's local map was never written (:func:`save_local`).
    """
    held = {m.id: m for m in load_local(conn, shard_map.name, shard=mapping.shard, schema=schema)}
    found = held.get(mapping.id)
    where = f"shard {mapping.shard!r} ({_where(conn, schema, LOCAL_TABLE)})"
    fix = (
        "refresh the global map (ShardMapCache.refresh()) and retry; if it persists, write the shard's "
        "local map with save_local(conn, shard_map, shard)"
    )
    if found is None:
        raise MappingValidationError(
            f"{where} does not hold range {mapping.describe()} of shard map {shard_map.name!r}: {fix}"
        )
    if (found.low, found.high) != (mapping.low, mapping.high):
        raise MappingValidationError(
            f"{where} holds mapping {mapping.id} of shard map {shard_map.name!r} as {found.describe()}, "
            f"not {mapping.describe()}: {fix}"
        )
    if found.status != "online":
        raise MappingValidationError(
            f"{where} holds range {mapping.describe()} of shard map {shard_map.name!r} offline (it is being "
            "moved or repaired); retry when it is back online"
        )


class ShardMapCache:
    """A global shard map loaded on first use and kept; :meth:`refresh` reloads it.

    Parameters
    ----------
    connect:
        Opens a connection to the database holding the global map; it is closed after each load.
    name, schema:
        Which stored map.
    max_age:
        Seconds after which :meth:`get` reloads by itself; ``None`` keeps the map until :meth:`refresh`.
    clock:
        Seconds, monotonic; injectable so ``max_age`` is tested without sleeping.

    :meth:`get` returns a copy: changing it does not change the cache (save changes with
    :func:`update_global`, then :meth:`refresh`).
    """

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        name: str,
        *,
        schema: str = "public",
        max_age: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_age is not None and not max_age >= 0:
            raise InvalidArgumentError(
                f"max_age must be >= 0 seconds or None, got {max_age!r}", argument="max_age"
            )
        self.name = name
        self.schema = schema
        self.max_age = max_age
        self.loads = 0
        self._connect = connect
        self._clock = clock
        # Guards _map and _loaded_at, and is held during a load: concurrent callers wait for one load.
        self._lock = threading.Lock()
        self._map: RangeShardMap | None = None
        self._loaded_at = 0.0

    def __repr__(self) -> str:
        version = self._map.version if self._map is not None else None
        return f"ShardMapCache(name={self.name!r}, schema={self.schema!r}, version={version})"

    def get(self) -> RangeShardMap:
        """The cached map, loaded first if there is none yet (or it is older than ``max_age``)."""
        with self._lock:
            current = self._map
            if current is None or (
                self.max_age is not None and self._clock() - self._loaded_at >= self.max_age
            ):
                current = self._load()
            return current.copy()

    def refresh(self) -> RangeShardMap:
        """Reload the map now (e.g. after a :class:`MappingValidationError`) and return it."""
        with self._lock:
            return self._load().copy()

    def _load(self) -> RangeShardMap:
        with self._connect() as conn:
            loaded = load_global(conn, self.name, schema=self.schema)
        self._map, self._loaded_at = loaded, self._clock()
        self.loads += 1
        return loaded
