"""Every public call refuses a user's mistake with a ``LakebaseSparkError`` subclass (and the matching
builtin where one fits), before it opens a connection or starts Spark: ``except LakebaseSparkError``
catches all of them, and the message names the argument. Calls whose check needs a DataFrame or a
database are covered where those run (writing/test_writer, reading/test_reads, sharding/test_sharded)."""

from __future__ import annotations

import pytest

import lakebase_spark as ls
from lakebase_spark.sharding import (
    RangeShardMap,
    Shard,
    ShardMapCache,
    ShardMapError,
    read_sharded,
)

E = "projects/p/branches/b/endpoints/e"
EMPTY_MAP = RangeShardMap("m", "bigint")


def nothing():
    raise AssertionError("a refused call must not connect")


MISTAKES = {
    "lakebase_options without a target": (lambda: ls.lakebase_options(), ValueError, "exactly one of"),
    "lakebase_options with both targets": (
        lambda: ls.lakebase_options(E, instance="i"),
        ValueError,
        "exactly one of",
    ),
    "lakebase_options malformed endpoint": (lambda: ls.lakebase_options("nope"), ValueError, "nope"),
    "lakebase_options empty database": (lambda: ls.lakebase_options(E, database=""), ValueError, "database"),
    "connect without a target": (lambda: ls.connect(database="d"), ValueError, "exactly one of"),
    "connect with password=": (
        lambda: ls.connect(endpoint=E, database="d", password="x"),
        ValueError,
        "password",
    ),
    "connect without TLS": (
        lambda: ls.connect(endpoint=E, database="d", sslmode="disable"),
        ValueError,
        "TLS",
    ),
    "read without a target": (lambda: ls.read(None, "public.t"), ValueError, "exactly one of"),
    "read a malformed table": (lambda: ls.read(None, "a.b.c", endpoint=E), ValueError, "a.b.c"),
    "read in 0 partitions": (
        lambda: ls.read(None, "public.t", endpoint=E, partitions=0),
        ValueError,
        "partitions",
    ),
    "read with a 0 s hold": (lambda: ls.read(None, "public.t", endpoint=E, hold=0), None, "hold"),
    "read with a negative max_lag": (
        lambda: ls.read(None, "public.t", endpoint=E, max_lag=-1),
        ValueError,
        "max_lag",
    ),
    "read snapshot= inconsistently": (
        lambda: ls.read(None, "public.t", endpoint=E, snapshot=object(), consistent=False),
        None,
        "snapshot",
    ),
    "export_snapshot without a target": (lambda: ls.export_snapshot(), ValueError, "exactly one of"),
    "export_snapshot with a negative hold": (lambda: ls.export_snapshot(E, hold=-5), None, "hold"),
    "write without a target": (lambda: ls.write(None, "public.t"), ValueError, "exactly one of"),
    "foreach_batch without a target": (lambda: ls.foreach_batch("public.t"), ValueError, "exactly one of"),
    "foreach_batch in overwrite mode": (
        lambda: ls.foreach_batch("public.t", endpoint=E, mode="overwrite"),
        ValueError,
        "overwrite",
    ),
    "TokenBroker with a negative margin": (
        lambda: ls.TokenBroker(object(), refresh_margin=-1),
        ValueError,
        "refresh_margin",
    ),
    "an empty Secret": (lambda: ls.Secret(""), ValueError, "empty"),
    "a shard map of an unknown key type": (lambda: RangeShardMap("m", "float"), ValueError, "float"),
    "a shard without a target": (lambda: Shard("s"), ValueError, "endpoint"),
    "a shard map cache with a negative max_age": (
        lambda: ShardMapCache(nothing, "m", max_age=-1),
        ValueError,
        "max_age",
    ),
    "read_sharded in 0 partitions": (
        lambda: read_sharded(None, EMPTY_MAP, table="public.t", key="id", partitions=0),
        ValueError,
        "partitions",
    ),
    "read_sharded with an unknown on_invalid": (
        lambda: read_sharded(None, EMPTY_MAP, table="public.t", key="id", partitions=2, on_invalid="x"),
        ValueError,
        "on_invalid",
    ),
    "malformed shard map JSON": (lambda: RangeShardMap.from_json("{"), ValueError, "malformed"),
    "a shard map document without a key type": (
        lambda: RangeShardMap.from_dict({"name": "m"}),
        ValueError,
        "key_type",
    ),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_every_public_call_refuses_mistakes_with_its_own_errors(mistake: str) -> None:
    call, builtin, named = MISTAKES[mistake]
    with pytest.raises(ls.LakebaseSparkError, match=named) as raised:
        call()
    if builtin is not None:
        assert isinstance(raised.value, builtin), type(raised.value).__mro__


def test_invalid_arguments_name_the_parameter() -> None:
    with pytest.raises(ls.InvalidArgumentError) as raised:
        ls.TokenBroker(object(), refresh_margin=-1)
    assert raised.value.argument == "refresh_margin"
    with pytest.raises(ls.InvalidArgumentError) as raised:
        ls.lakebase_options(E, database="")
    assert raised.value.argument == "database"


def test_one_missing_dependency_error() -> None:
    from lakebase_spark import sharding

    assert sharding.MissingDependencyError is ls.MissingDependencyError
    assert issubclass(sharding.ShardedReadError, ShardMapError)


@pytest.mark.postgres
def test_connect_takes_tokens_and_warns_on_the_old_broker_parameter(emulator, broker_service) -> None:
    from .conftest import DATABASE, ENDPOINT

    with ls.connect(endpoint=ENDPOINT, database=DATABASE, tokens=broker_service.broker) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with (
        pytest.warns(DeprecationWarning, match="tokens="),
        ls.connect(endpoint=ENDPOINT, database=DATABASE, broker=broker_service) as conn,
    ):
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_the_workspace_client_parameter_has_one_name() -> None:
    client = object()
    assert ls.TokenBroker(client).workspace is client  # positional, as before
    with pytest.warns(DeprecationWarning, match="workspace_client="):
        assert ls.TokenBroker(workspace=client).workspace is client
    with pytest.warns(DeprecationWarning, match="deprecated"), pytest.raises(ls.InvalidArgumentError):
        ls.TokenBroker(object(), workspace=client)
