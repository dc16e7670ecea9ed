"""Shard maps stored in Postgres: the global map with optimistic concurrency, local maps, the cache."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from lakebase_spark.sharding import (
    GLOBAL_TABLE,
    LOCAL_TABLE,
    RangeShardMap,
    ShardMapCache,
    ShardMapNotFoundError,
    ShardMapVersionConflictError,
    UnknownShardError,
    load_global,
    load_local,
    save_global,
    save_local,
    update_global,
)

from ..concurrency import run_together
from ..shard_maps import shard, two_shard_map

# -- Postgres: stored maps ------------------------------------------------------------------------------


@pytest.fixture
def schema(admin: psycopg.Connection[Any]) -> Iterator[str]:
    name = f"sm_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE SCHEMA "{name}"')
    yield name
    admin.execute(f'DROP SCHEMA "{name}" CASCADE')


def text_map() -> RangeShardMap:
    m = two_shard_map("text")
    m.add_range("", "m", "a")
    m.add_range("m", "x'y", "b")
    m.add_range("x'y", None, "a", status="offline")
    return m


@pytest.mark.postgres
def test_save_and_load_global_with_optimistic_concurrency(
    admin: psycopg.Connection[Any], schema: str
) -> None:
    m = text_map()
    with pytest.raises(ShardMapNotFoundError, match="no table"):
        load_global(admin, "orders", schema=schema)
    save_global(admin, m, expected_version=0, schema=schema)
    assert load_global(admin, "orders", schema=schema) == m
    row = admin.execute(
        psycopg.sql.SQL("SELECT version, key_type, definition->>'name' FROM {}").format(
            psycopg.sql.Identifier(schema, GLOBAL_TABLE)
        )
    ).fetchone()
    assert row == (m.version, "text", "orders")
    with pytest.raises(ShardMapNotFoundError, match=r"'nope'.*stored maps: 'orders'"):
        load_global(admin, "nope", schema=schema)

    mine, theirs = load_global(admin, "orders", schema=schema), load_global(admin, "orders", schema=schema)
    loaded = mine.version
    theirs.split(theirs.mapping_for_key("a").id, "f")
    save_global(admin, theirs, expected_version=loaded, schema=schema)
    mine.set_status(mine.mapping_for_key("z").id, "online")
    with pytest.raises(
        ShardMapVersionConflictError, match=f"is at version {loaded + 1}, not the expected version"
    ):
        save_global(admin, mine, expected_version=loaded, schema=schema)
    assert load_global(admin, "orders", schema=schema) == theirs  # the failed save changed nothing
    with pytest.raises(ShardMapVersionConflictError, match=r"expected \(absent\)"):
        save_global(admin, mine, expected_version=0, schema=schema)
    save_global(admin, mine, schema=schema)  # no expected version: overwrite
    assert load_global(admin, "orders", schema=schema) == mine
    with pytest.raises(ShardMapVersionConflictError, match="does not exist"):
        save_global(admin, two_shard_map(name="other"), expected_version=1, schema=schema)
    with pytest.raises(ValueError, match="expected_version"):
        save_global(admin, mine, expected_version=-1, schema=schema)


@pytest.mark.postgres
def test_store_calls_commit_and_leave_no_open_transaction(emulator: Any, schema: str) -> None:
    from ..conftest import DATABASE

    m = text_map()
    with psycopg.connect(emulator.admin_conninfo(DATABASE)) as conn:  # not autocommit
        save_global(conn, m, schema=schema)
        save_local(conn, m, "a", schema=schema)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as other:
            assert load_global(other, "orders", schema=schema) == m
            assert len(load_local(other, "orders", schema=schema)) == 2
        load_global(conn, "orders", schema=schema)
        load_local(conn, "orders", schema=schema)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.postgres
def test_update_global_retries_after_a_conflict(admin: psycopg.Connection[Any], schema: str) -> None:
    save_global(admin, text_map(), schema=schema)
    calls = 0

    def change(m: RangeShardMap) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # someone else saves between our load and our save
            update_global(
                admin,
                "orders",
                lambda other: other.remove_range(other.mapping_for_key("z").id),
                schema=schema,
            )
        m.split(m.mapping_for_key("a").id, "f")

    saved = update_global(admin, "orders", change, schema=schema)
    assert calls == 2
    stored = load_global(admin, "orders", schema=schema)
    assert stored == saved
    assert len(stored.mappings) == 3  # split (+1) after the other's removal (-1)
    assert stored.gaps() == [(None, ""), ("x'y", None)]

    def racing(m: RangeShardMap) -> None:
        other = m.copy()
        other.add_shard(shard("d"))
        save_global(admin, other, schema=schema)
        m.add_shard(shard("c"))

    with pytest.raises(ShardMapVersionConflictError):
        update_global(admin, "orders", racing, schema=schema, retries=0)
    assert "c" not in load_global(admin, "orders", schema=schema).shards


@pytest.mark.postgres
def test_local_maps(admin: psycopg.Connection[Any], schema: str) -> None:
    m = text_map()
    assert load_local(admin, "orders", schema=schema) == []  # no table yet
    save_local(admin, m, "a", schema=schema)
    on_a = [x for x in m.mappings if x.shard == "a"]
    assert load_local(admin, "orders", schema=schema) == on_a
    assert load_local(admin, "orders", shard="b", schema=schema) == []
    assert load_local(admin, "other", schema=schema) == []
    rows = admin.execute(
        psycopg.sql.SQL("SELECT low, high, status, map_version FROM {} ORDER BY low").format(
            psycopg.sql.Identifier(schema, LOCAL_TABLE)
        )
    ).fetchall()
    assert rows == [('""', '"m"', "online", m.version), ('"x\'y"', None, "offline", m.version)]

    m.move_range(m.mapping_for_key("a").id, "b")  # moved away: the shard's rows are replaced
    save_local(admin, m, "a", schema=schema)
    save_local(admin, m, "b", schema=schema)
    assert [x.low for x in load_local(admin, "orders", shard="a", schema=schema)] == ["x'y"]
    assert [x.low for x in load_local(admin, "orders", shard="b", schema=schema)] == ["", "m"]
    with pytest.raises(UnknownShardError, match="'c'"):
        save_local(admin, m, "c", schema=schema)


@pytest.mark.postgres
def test_shard_map_cache(emulator: Any, admin: psycopg.Connection[Any], schema: str) -> None:
    from ..conftest import DATABASE

    m = text_map()
    save_global(admin, m, schema=schema)
    now = [0.0]
    opened: list[psycopg.Connection[Any]] = []

    def connect() -> psycopg.Connection[Any]:
        opened.append(psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True))
        return opened[-1]

    cache = ShardMapCache(connect, "orders", schema=schema, max_age=60, clock=lambda: now[0])
    first = cache.get()
    assert first == m
    assert cache.loads == 1
    first.remove_range(first.mappings[0].id)  # a copy: the cache keeps its own
    assert cache.get() == m
    assert cache.loads == 1
    assert all(c.closed for c in opened)

    update_global(admin, "orders", lambda x: x.remove_range(x.mapping_for_key("z").id), schema=schema)
    assert cache.get().version == m.version  # cached
    assert cache.refresh().version == m.version + 1
    update_global(admin, "orders", lambda x: x.remove_range(x.mapping_for_key("n").id), schema=schema)
    now[0] = 59.0
    assert cache.get().version == m.version + 1
    now[0] = 60.0
    assert cache.get().version == m.version + 2  # max_age passed: reloaded
    assert cache.loads == 3

    fresh = ShardMapCache(connect, "orders", schema=schema)
    run_together(lambda _: fresh.get(), 8)
    assert fresh.loads == 1  # concurrent first callers share one load
    with pytest.raises(ShardMapNotFoundError):
        ShardMapCache(connect, "missing", schema=schema).get()
