"""Sharded reads and writes over three shard databases behind the emulator, with skewed keys."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql
from pyspark.sql import functions as F

from lakebase_spark import InvalidTableNameError
from lakebase_spark.names import TableName
from lakebase_spark.sharding import (
    MappingValidationError,
    RangeShardMap,
    Shard,
    ShardedReadError,
    UnroutableRowsError,
    plan_sharded_read,
    read_sharded,
    save_local,
    write_sharded,
)

from ..conftest import ENDPOINT
from ..frames import assert_same_rows

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]

SHARDS = ("shard_a", "shard_b", "shard_c")
#: Keys i*i for i in 1..N: dense at the bottom, sparse at the top (density ~ 1/sqrt(key)).
N = 40_000
NEGATIVE = (-5, -1_000_000)
BOUNDS = (-(10**12), 10**6, 10**9)  # shard_a [-1e12, 1e6), shard_b [1e6, 1e9), shard_c [1e9, inf)
STALE = range(1_001, 1_101)  # keys (squared) of shard_b's range that shard_a still holds after a "move"


@dataclass
class Fleet:
    shard_map: RangeShardMap
    keys: list[int]

    def owner(self, key: int) -> str:
        return self.shard_map.shard_for_key(key).name


def connect(emulator, database: str) -> psycopg.Connection:
    conn = psycopg.connect(emulator.admin_conninfo(database), autocommit=True)
    conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    return conn


@pytest.fixture(scope="module")
def fleet(emulator) -> Fleet:
    shard_map = RangeShardMap("orders_by_id", "bigint")
    for name in SHARDS:
        emulator.create_database(name)
        shard_map.add_shard(Shard(name, database=name, endpoint=ENDPOINT))
    shard_map.add_range(BOUNDS[0], BOUNDS[1], "shard_a")
    shard_map.add_range(BOUNDS[1], BOUNDS[2], "shard_b")
    shard_map.add_range(BOUNDS[2], None, "shard_c")
    keys = sorted({i * i for i in range(1, N + 1)} | set(NEGATIVE) | {999_999, 10**9, 10**15})
    for name in SHARDS:
        with connect(emulator, name) as conn:
            conn.execute("DROP TABLE IF EXISTS public.orders, public.orders_all")
            conn.execute(
                "CREATE TABLE public.orders (id bigint, customer text, amount numeric(12,2), note text)"
            )
            mine = [k for k in keys if shard_map.shard_for_key(k).name == name]
            if name == "shard_a":
                mine += [i * i for i in STALE]  # left behind by a move to shard_b: must never be read
            with conn.cursor().copy("COPY public.orders (id, customer, amount, note) FROM STDIN") as copy:
                for k in mine:
                    copy.write_row((k, f"c{k % 97}", Decimal(k % 100_000) / 100, f"row {k}"))
                if name == "shard_a":
                    copy.write_row((None, "nobody", Decimal(0), "NULL key"))
            conn.execute("ANALYZE public.orders")
    with connect(emulator, "shard_c") as conn:  # the same rows in one table, for Spark's own striding
        conn.execute(
            "CREATE TABLE public.orders_all (id bigint, customer text, amount numeric(12,2), note text)"
        )
        with conn.cursor().copy("COPY public.orders_all FROM STDIN") as copy:
            for k in keys:
                copy.write_row((k, f"c{k % 97}", Decimal(k % 100_000) / 100, f"row {k}"))
        conn.execute("ANALYZE public.orders_all")
    return Fleet(shard_map, keys)


def expected_rows(spark, keys: list[int]):
    rows = [(k, f"c{k % 97}", Decimal(k % 100_000) / 100, f"row {k}") for k in keys]
    return spark.createDataFrame(rows, "id long, customer string, amount decimal(12,2), note string")


def read_orders(spark, fleet, broker_service, **options):
    """``public.orders`` across the fleet by ``id``, with ``options`` for :func:`read_sharded`."""
    return read_sharded(
        spark, fleet.shard_map, table="public.orders", key="id", broker=broker_service, **options
    )


def partition_sizes(df) -> list[int]:
    counts = df.groupBy(F.spark_partition_id().alias("p")).count().collect()
    sizes = {row["p"]: row["count"] for row in counts}
    return [sizes.get(p, 0) for p in range(df.rdd.getNumPartitions())]


def test_sharded_read_equals_the_source_rows_once_each(spark, fleet, broker_service) -> None:
    df = read_orders(spark, fleet, broker_service, partitions=8, shard_column="shard")
    assert_same_rows(df.drop("shard"), expected_rows(spark, fleet.keys))
    # Every row came from the shard that owns its key; the stale copies on shard_a were not read.
    owners = {row["id"]: row["shard"] for row in df.select("id", "shard").collect()}
    assert all(owners[k] == fleet.owner(k) for k in fleet.keys)
    assert all(owners[i * i] == "shard_b" for i in STALE)


def test_consistent_sharded_read_holds_a_snapshot_per_shard(spark, fleet, broker_service) -> None:
    from lakebase_spark import Snapshot

    df = read_orders(spark, fleet, broker_service, partitions=6, consistent=True, hold=300)
    assert sorted(r.id for r in df.select("id").collect()) == sorted(fleet.keys)
    Snapshot.close_all()  # every shard's snapshot ends: the partitions cannot import them any more
    with pytest.raises(Exception, match=r"consistent read's snapshot .* cannot be imported"):
        df.count()


def test_a_key_range_touches_only_the_shards_it_needs(spark, fleet, broker_service) -> None:
    plan = plan_sharded_read(
        fleet.shard_map,
        table="public.orders",
        key="id",
        key_range=(2_000_000, 5_000_000),
        partitions=4,
        broker=broker_service,
    )
    assert plan.shards_touched == ["shard_b"]
    assert plan.partitions[0].low == 2_000_000
    assert plan.partitions[-1].high == 5_000_000
    df = read_orders(spark, fleet, broker_service, key_range=(2_000_000, 5_000_000), partitions=4)
    assert sorted(r.id for r in df.select("id").collect()) == [
        k for k in fleet.keys if 2_000_000 <= k < 5_000_000
    ]

    spanning = plan_sharded_read(
        fleet.shard_map,
        table="public.orders",
        key="id",
        key_range=(500_000, 2 * 10**9),
        broker=broker_service,
    )
    assert spanning.shards_touched == ["shard_a", "shard_b", "shard_c"]
    below = plan_sharded_read(
        fleet.shard_map, table="public.orders", key="id", key_range=(None, 0), broker=broker_service
    )
    assert below.shards_touched == ["shard_a"]
    assert below.unmapped == [(None, BOUNDS[0])]


def test_partitions_are_balanced_where_spark_striding_is_not(spark, fleet, broker_service, opts) -> None:
    ours = read_orders(spark, fleet, broker_service, partitions=8)
    ours_sizes = partition_sizes(ours)
    shard_c_opts = dict(opts, url=opts["url"].replace("/lakebase_test?", "/shard_c?"))

    def striding(upper: int) -> list[int]:
        return partition_sizes(
            spark.read.format("jdbc")
            .options(**shard_c_opts)
            .option("dbtable", "public.orders_all")
            .option("partitionColumn", "id")
            .option("lowerBound", str(min(fleet.keys)))
            .option("upperBound", str(upper))
            .option("numPartitions", "8")
            .load()
        )

    def max_over_mean(sizes: list[int]) -> float:
        return max(sizes) / (sum(sizes) / len(sizes))

    spark_sizes = striding(max(fleet.keys))
    # Bounds a user would pick without the one far outlier (10**15): Spark's last partition takes the rest.
    spark_tight = striding(N * N)
    report = {
        "ours": ours_sizes,
        "ours_max_over_mean": round(max_over_mean(ours_sizes), 2),
        "spark_striding_min_max": spark_sizes,
        "spark_max_over_mean": round(max_over_mean(spark_sizes), 2),
        "spark_striding_without_outlier": spark_tight,
        "spark_tight_max_over_mean": round(max_over_mean(spark_tight), 2),
    }
    print("balance:", json.dumps(report))
    assert sum(ours_sizes) == sum(spark_sizes) == sum(spark_tight) == len(fleet.keys)
    assert len(ours_sizes) == 8
    assert max_over_mean(ours_sizes) <= 1.5
    assert max_over_mean(spark_sizes) > 3 * max_over_mean(ours_sizes)
    assert max_over_mean(spark_tight) > 2 * max_over_mean(ours_sizes)


def test_boundary_keys(spark, fleet, broker_service) -> None:
    df = read_orders(spark, fleet, broker_service, shard_column="shard")
    where = {
        r.id: r.shard
        for r in df.where(F.col("id").isin(999_999, 10**6, 10**9, 10**15, -5, -1_000_000)).collect()
    }
    assert where == {
        999_999: "shard_a",
        10**6: "shard_b",
        10**9: "shard_c",
        10**15: "shard_c",
        -5: "shard_a",
        -1_000_000: "shard_a",
    }
    assert df.where(F.col("id").isNull()).count() == 0  # NULL keys map to no range
    with pytest.raises(ShardedReadError, match=r"1 rows of .* have a NULL 'id'"):
        plan_sharded_read(
            fleet.shard_map, table="public.orders", key="id", null_keys="fail", broker=broker_service
        )


@pytest.mark.parametrize("key_type", ["text", "uuid"])
def test_text_and_uuid_keys(spark, emulator, fleet, broker_service, key_type: str) -> None:
    if key_type == "text":
        keys = [
            "",
            "A",
            "Z",
            "a",
            "it's",
            "m",
            "z",
            "zz",
            "Ä",
            "ß",
            "東京",
            "🚀",
            "O'Brien; DROP TABLE x; --",
        ]
        bounds = ["", "m", "Ä"]
    else:
        keys = sorted(str(uuid.UUID(int=i * (2**124) + 7)) for i in range(16))
        bounds = [str(uuid.UUID(int=0)), str(uuid.UUID(int=5 * 2**124)), str(uuid.UUID(int=11 * 2**124))]
    shard_map = RangeShardMap(f"{key_type}_map", key_type)
    for name in SHARDS:
        shard_map.add_shard(Shard(name, database=name, endpoint=ENDPOINT))
    shard_map.add_range(bounds[0], bounds[1], "shard_a")
    shard_map.add_range(bounds[1], bounds[2], "shard_b")
    shard_map.add_range(bounds[2], None, "shard_c")
    for name in SHARDS:
        with connect(emulator, name) as conn:
            conn.execute(f"DROP TABLE IF EXISTS public.keyed_{key_type}")
            conn.execute(f"CREATE TABLE public.keyed_{key_type} (k {key_type}, v int)")
            for i, k in enumerate(keys):  # every shard holds every key: only the owner's may be read
                conn.execute(f"INSERT INTO public.keyed_{key_type} VALUES (%s, %s)", (k, i))
    df = read_sharded(
        spark,
        shard_map,
        table=f"public.keyed_{key_type}",
        key="k",
        shard_column="shard",
        partitions=6,
        broker=broker_service,
    )
    got = {(r.k, r.shard) for r in df.collect()}
    assert got == {(k, shard_map.shard_for_key(k).name) for k in keys}
    assert len(got) == len(keys)
    # These small tables were never analyzed: the split points came from a sample of the keys.
    plan = plan_sharded_read(shard_map, table=f"public.keyed_{key_type}", key="k", broker=broker_service)
    assert set(plan.estimate_sources.values()) == {"sample"}


def test_validation_against_local_maps(spark, emulator, fleet, broker_service) -> None:
    shard_map = RangeShardMap.from_dict(fleet.shard_map.to_dict())
    for name in SHARDS:
        with connect(emulator, name) as conn:
            save_local(conn, shard_map, name)
    plan = plan_sharded_read(shard_map, table="public.orders", key="id", validate=True, broker=broker_service)
    assert plan.skipped == []

    moved = shard_map.mappings[1]  # shard_b's range, as if moved away without updating the global map
    with connect(emulator, "shard_b") as conn:
        conn.execute("DELETE FROM public.lakebase_shard_map_local WHERE mapping_id = %s", (moved.id,))
    with pytest.raises(MappingValidationError, match="does not hold range"):
        plan_sharded_read(shard_map, table="public.orders", key="id", validate=True, broker=broker_service)
    df = read_sharded(
        spark,
        shard_map,
        table="public.orders",
        key="id",
        validate=True,
        on_invalid="skip",
        broker=broker_service,
    )
    assert df.where((F.col("id") >= BOUNDS[1]) & (F.col("id") < BOUNDS[2])).count() == 0
    assert df.count() == len([k for k in fleet.keys if not BOUNDS[1] <= k < BOUNDS[2]])

    shard_map.set_status(shard_map.mappings[2].id, "offline")
    with pytest.raises(MappingValidationError, match="is offline"):
        plan_sharded_read(shard_map, table="public.orders", key="id", broker=broker_service)
    skipped = plan_sharded_read(
        shard_map, table="public.orders", key="id", on_invalid="skip", broker=broker_service
    )
    assert {s.mapping.shard for s in skipped.skipped} == {"shard_c"}
    assert skipped.shards_touched == ["shard_a", "shard_b"]  # not validated: shard_b's own map is not read
    with connect(emulator, "shard_b") as conn:
        save_local(conn, fleet.shard_map, "shard_b")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": "nope"}, ShardedReadError, "has no column 'nope'"),
        ({"key": 'id" = 1 OR "id'}, ShardedReadError, "has no column"),
        ({"table": "missing_table"}, ShardedReadError, "has no table"),
        # Names follow Postgres' rules, as for every other call of the package (one parser).
        (
            {"table": "orders; DROP TABLE public.orders_all; --"},
            InvalidTableNameError,
            "not a plain identifier",
        ),
        ({"table": "public.orders; DROP TABLE x; --"}, InvalidTableNameError, "not a plain identifier"),
        ({"table": "a.b.c"}, InvalidTableNameError, "must be 'table' or 'schema.table'"),
        ({"key": "customer"}, ShardedReadError, "is text, but the shard map's keys are bigint"),
    ],
)
def test_bad_input_is_explained_and_changes_nothing(
    emulator, fleet, broker_service, kwargs, error, match
) -> None:
    args = {"table": "public.orders", "key": "id", **kwargs}
    with pytest.raises(error, match=match):
        plan_sharded_read(fleet.shard_map, broker=broker_service, **args)
    with connect(emulator, "shard_c") as conn:
        assert conn.execute("SELECT count(*) FROM public.orders_all").fetchone()[0] == len(fleet.keys)


def test_table_names_fold_to_lower_case_as_in_postgres_and_in_write(fleet, broker_service) -> None:
    """``"Orders"`` is ``public.orders`` for sharded reads as for lakebase_spark.write (it used to be
    ``public."Orders"`` here only)."""
    # The fleet's table is public.orders: this planned "Public"."Orders" and found no table.
    plan = plan_sharded_read(fleet.shard_map, table="Public.Orders", key="id", broker=broker_service)
    assert plan.table == TableName("public", "orders")
    assert plan.partitions
    quoted = plan_sharded_read(fleet.shard_map, table=("public", "orders"), key="id", broker=broker_service)
    assert quoted.table == plan.table


def test_sharded_write_routes_every_row(spark, emulator, fleet, broker_service) -> None:
    for name in SHARDS:
        with connect(emulator, name) as conn:
            conn.execute("DROP TABLE IF EXISTS public.routed")
    keys = [-7, 0, 999_999, 10**6, 10**6 + 1, 10**9 - 1, 10**9, 10**15]
    df = spark.createDataFrame([(k, f"v{k}") for k in keys], "id long, v string")
    result = write_sharded(
        df, fleet.shard_map, table="public.routed", key="id", broker=broker_service, write_id="routed-1"
    )
    assert result.rows == {"shard_a": 3, "shard_b": 3, "shard_c": 2}
    for name in SHARDS:
        with connect(emulator, name) as conn:
            stored = sorted(r[0] for r in conn.execute("SELECT id FROM public.routed"))
            # Written by the COPY writer: each shard's commit log holds its part of the write, finished.
            done = conn.execute(
                "SELECT rows FROM public.lakebase_spark_commits WHERE write_id = %s AND part = -1",
                (f"routed-1/{name}",),
            ).fetchone()
        assert stored == sorted(k for k in keys if fleet.owner(k) == name)
        assert done == (result.rows[name],)
    # Run again with the same write id: every shard's part is already done, nothing is written twice.
    again = write_sharded(
        df, fleet.shard_map, table="public.routed", key="id", broker=broker_service, write_id="routed-1"
    )
    assert again.rows == result.rows
    for name in SHARDS:
        with connect(emulator, name) as conn:
            assert (
                conn.execute("SELECT count(*), count(DISTINCT id) FROM public.routed").fetchone()
                == (result.rows[name],) * 2
            )


def test_sharded_write_rejects_unmapped_keys_and_writes_nothing(
    spark, emulator, fleet, broker_service
) -> None:
    for name in SHARDS:
        with connect(emulator, name) as conn:
            conn.execute("DROP TABLE IF EXISTS public.rejected")
    gappy = RangeShardMap.from_dict(fleet.shard_map.to_dict())
    gappy.remove_range(gappy.mappings[1].id)  # no shard owns [1e6, 1e9) any more
    rows = [(1, "ok"), (2_000_000, "gap"), (3_000_000, "gap"), (None, "null"), (10**10, "ok")]
    df = spark.createDataFrame(rows, "id long, v string")
    with pytest.raises(UnroutableRowsError, match=r"3 rows have a 'id' .* e\.g\. \[") as info:
        write_sharded(df, gappy, table="public.rejected", key="id", broker=broker_service)
    assert "2000000" in str(info.value)
    for name in SHARDS:
        with connect(emulator, name) as conn:
            exists = conn.execute("SELECT to_regclass('public.rejected')").fetchone()[0]
        assert exists is None  # nothing written anywhere


def test_a_stale_cached_map_is_reloaded_when_validation_fails(emulator, fleet, broker_service) -> None:
    from lakebase_spark.sharding import ShardMapCache, save_global

    current = RangeShardMap.from_dict(fleet.shard_map.to_dict())
    for name in SHARDS:
        with connect(emulator, name) as conn:
            save_local(conn, current, name)
    with connect(emulator, "shard_a") as conn:
        conn.execute("DROP TABLE IF EXISTS public.lakebase_shard_map")
        save_global(conn, current)
    cache = ShardMapCache(lambda: connect(emulator, "shard_a"), current.name)
    assert cache.get().version == current.version  # cached now

    # Elsewhere, shard_b's range is split in two (new mapping ids) and both maps are updated.
    current.split(current.mappings[1].id, 10**8)
    with connect(emulator, "shard_b") as conn:
        save_local(conn, current, "shard_b")
    with connect(emulator, "shard_a") as conn:
        save_global(conn, current)

    plan = plan_sharded_read(cache, table="public.orders", key="id", validate=True, broker=broker_service)
    assert cache.loads == 2  # the stale map failed validation, was reloaded, and the plan used the new one
    assert {p.mapping_id for p in plan.partitions} >= {current.mappings[1].id, current.mappings[2].id}
    assert plan.skipped == []
    with connect(emulator, "shard_b") as conn:
        save_local(conn, fleet.shard_map, "shard_b")


def test_shards_with_different_schemas_are_refused(spark, emulator, fleet, broker_service) -> None:
    for name in SHARDS:
        with connect(emulator, name) as conn:
            conn.execute("DROP TABLE IF EXISTS public.drifted")
            amount = "text" if name == "shard_b" else "numeric(12,2)"
            conn.execute(f"CREATE TABLE public.drifted (id bigint, amount {amount})")
            conn.execute("INSERT INTO public.drifted VALUES (1, '1'), (2000000, '2'), (2000000000, '3')")
    with pytest.raises(ShardedReadError, match=r"'shard_a' and 'shard_b' hold different schemas .*amount"):
        read_sharded(spark, fleet.shard_map, table="public.drifted", key="id", broker=broker_service)


def test_planning_waits_for_shards_waking_from_scale_to_zero(emulator, fleet, broker_service) -> None:
    """The planner's own logins (catalog statistics) follow the provider's cold-start policy."""
    woken = emulator.faults.cold_start(down_seconds=1.0, starting_seconds=1.0)
    assert not woken.done()  # Postgres is down when planning starts
    plan = plan_sharded_read(
        fleet.shard_map, table="public.orders", key="id", partitions=4, broker=broker_service
    )
    assert woken.done()
    assert plan.shards_touched == list(SHARDS)
    assert len(plan.partitions) == 4


def test_balance_without_statistics_weighs_the_sample_by_each_range_s_rows(
    spark, emulator, fleet, broker_service
) -> None:
    """Never-analysed shards of 80k, 10k and 10k rows: a capped sample stands for all of its range."""
    shard_map = RangeShardMap("unanalysed_by_id", "bigint")
    rows = {"shard_a": (0, 80_000), "shard_b": (80_000, 90_000), "shard_c": (90_000, 100_000)}
    for name, (low, high) in rows.items():
        shard_map.add_shard(Shard(name, database=name, endpoint=ENDPOINT))
        shard_map.add_range(low, high if name != "shard_c" else None, name)
        with connect(emulator, name) as conn:
            conn.execute("DROP TABLE IF EXISTS public.unanalysed")
            # No autovacuum, so no ANALYZE behind the test's back: the planner must sample.
            conn.execute("CREATE TABLE public.unanalysed (id bigint, v int) WITH (autovacuum_enabled = off)")
            conn.execute(
                "INSERT INTO public.unanalysed SELECT g, g %% 7 FROM generate_series(%s, %s) g",
                (low, high - 1),
            )
    plan = plan_sharded_read(
        shard_map, table="public.unanalysed", key="id", partitions=8, broker=broker_service
    )
    assert set(plan.estimate_sources.values()) == {"sample"}
    df = read_sharded(
        spark, shard_map, table="public.unanalysed", key="id", partitions=8, broker=broker_service
    )
    sizes = partition_sizes(df)
    assert sum(sizes) == 100_000
    print("unanalysed partition sizes:", sizes)
    assert max(sizes) / (sum(sizes) / len(sizes)) <= 1.5


def test_a_sharded_read_looks_up_each_shard_s_host_once(spark, emulator, fleet, broker_service) -> None:
    lookups = "GET /api/2.0/postgres/{name}"
    before = emulator.stats.calls_to(lookups)
    df = read_orders(spark, fleet, broker_service, partitions=3)
    assert df.count() == len(fleet.keys)
    assert emulator.stats.calls_to(lookups) - before == len(SHARDS)  # planning's; the Spark side reuses them
