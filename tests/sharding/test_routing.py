"""Routing with real logins: a key to its shard's database, token retry, clear failures."""

from __future__ import annotations

from typing import Any

import pytest

from lakebase_spark import (
    BrokerService,
    TLSRequiredError,
    TokenBroker,
)
from lakebase_spark.sharding import (
    KeyNotMappedError,
    MappingOfflineError,
    MappingValidationError,
    RangeShardMap,
    Shard,
    ShardConnectionError,
    connect_for_key,
    connect_shard,
    save_local,
)

from ..conftest import ENDPOINT
from ..shard_maps import DB_A, DB_B, INSTANCE, shard


def test_connect_shard_refuses_a_password_and_plaintext() -> None:
    with pytest.raises(ValueError, match="password"):
        connect_shard(shard("a"), password="hunter2")
    for mode in ("disable", "allow", "prefer"):
        with pytest.raises(TLSRequiredError, match=mode):
            connect_shard(shard("a"), sslmode=mode)


# -- Postgres: routing with real logins -----------------------------------------------------------------


@pytest.fixture(scope="module")
def routed(emulator: Any) -> RangeShardMap:
    """Shard 'a' on the Autoscaling endpoint (database shardmap_a), 'b' on a Provisioned instance."""
    emulator.create_database(DB_A)
    emulator.create_database(DB_B)
    emulator.create_instance(INSTANCE)
    m = RangeShardMap(
        "routing",
        "bigint",
        shards=[Shard("a", endpoint=ENDPOINT, database=DB_A), Shard("b", instance=INSTANCE, database=DB_B)],
    )
    m.add_range(0, 100, "a")
    m.add_range(100, None, "b")
    return m


@pytest.mark.postgres
def test_connect_shard_logs_in_to_the_shards_database(
    emulator: Any, broker_service: BrokerService, routed: RangeShardMap
) -> None:
    for name, database in (("a", DB_A), ("b", DB_B)):
        with connect_shard(routed.shards[name], broker=broker_service, autocommit=True) as conn:
            assert conn.execute("SELECT current_user, current_database()").fetchone() == (
                emulator.user_name,
                database,
            )
            assert conn.execute("SHOW application_name").fetchone() == ("lakebase-spark",)
            assert conn.pgconn.ssl_in_use


@pytest.mark.postgres
def test_connect_for_key_routes_and_validates(
    emulator: Any, broker_service: BrokerService, routed: RangeShardMap
) -> None:
    m = routed.copy()
    for name in ("a", "b"):
        with connect_shard(m.shards[name], broker=broker_service, autocommit=True) as conn:
            save_local(conn, m, name)

    def database(shard_map: RangeShardMap, key: object, **kw: Any) -> str:
        with connect_for_key(shard_map, key, broker=broker_service, **kw) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
            assert row is not None
            return str(row[0])

    assert database(m, 42, validate=True) == DB_A
    assert database(m, "99", validate=True) == DB_A
    assert database(m, 100, validate=True) == DB_B
    assert database(m, 2**63 - 1, validate=True) == DB_B

    # A stale global map: [0, 100) moved to 'b' but 'b' was never told (its local map lacks the range).
    moved = m.copy()
    moved.move_range(moved.mapping_for_key(42).id, "b")
    with pytest.raises(MappingValidationError, match=r"shard 'b' .*does not hold range \[0, 100\)"):
        database(moved, 42, validate=True)
    assert database(moved, 42) == DB_B  # what validation prevents: reading the wrong shard

    # The shard has the range offline (a move in progress) while the global map says online.
    offline = m.copy()
    offline.set_status(offline.mapping_for_key(42).id, "offline")
    with connect_shard(m.shards["a"], broker=broker_service, autocommit=True) as conn:
        save_local(conn, offline, "a")
    with pytest.raises(MappingValidationError, match="offline"):
        database(m, 42, validate=True)
    with pytest.raises(MappingOfflineError):  # the global map itself says offline: no connection
        database(offline, 42)
    with pytest.raises(KeyNotMappedError, match="key -1 "):
        database(m, -1)


@pytest.mark.postgres
def test_connect_shard_retries_once_with_a_new_token(emulator: Any, routed: RangeShardMap) -> None:
    # Its own principal, so revoking its tokens cannot disturb other tests' cached ones.
    user = "shard-router@example.com"
    service = BrokerService(TokenBroker(emulator.workspace_client(token=emulator.add_user(user))))
    with connect_shard(routed.shards["a"], broker=service) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    assert emulator.tokens.revoke(user) == 1
    with connect_shard(routed.shards["a"], broker=service) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    assert (service.broker.stats.mints, service.broker.stats.refused_tokens) == (2, 1)


@pytest.mark.postgres
def test_connect_shard_failure_names_the_shard_not_the_token(emulator: Any, routed: RangeShardMap) -> None:
    service = BrokerService(
        TokenBroker(emulator.workspace_client())
    )  # leaves the shared broker's cache alone
    emulator.faults.refuse_logins_for(60)
    try:
        with pytest.raises(ShardConnectionError) as caught:
            connect_shard(routed.shards["a"], broker=service)
    finally:
        emulator.faults.refuse_logins_for(0)
    assert service.broker.stats.refused_tokens == 1  # retried once with a new token, then gave up
    token = service.broker.credential(endpoint=ENDPOINT).token.reveal()
    error = caught.value
    assert token not in str(error)
    assert token not in repr(error.args)
    assert "shard 'a'" in str(error)
    assert "authentication failed" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None  # psycopg's error holds the password in its pgconn
    assert isinstance(error, ConnectionError)
