"""``lakebase_spark.read``: one snapshot for every partition of a read, balanced partitions on any key
type, page (ctid) ranges for tables without a key; on the JDBC provider path and the jar-free path.

The consistency test runs a writer that keeps moving every row between the two halves of the key
range (and inserting and deleting rows) while Spark reads: a consistent read equals the table at its
snapshot exactly (checked by importing the same snapshot in the test's own connection); a read of
independent partitions shows the anomaly the README warns about.
"""

from __future__ import annotations

import collections
import threading
import time

import pyspark
import pytest
from psycopg import sql
from pyspark.sql import functions as F

import lakebase_spark
from lakebase_spark.reading import SnapshotError

from ..conftest import DATABASE, ENDPOINT

SPARK_MAJOR = int(pyspark.__version__.split(".")[0])
pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]
PATHS = [
    "jdbc",
    pytest.param(
        "jar-free", marks=pytest.mark.skipif(SPARK_MAJOR < 4, reason="Python data sources are Spark 4+")
    ),
]
ROWS = 20_000
HALF = ROWS // 2


@pytest.fixture
def db(admin, emulator):
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    return admin


def read(spark, broker_service, table, path, **kwargs):
    return lakebase_spark.read(
        spark,
        table,
        endpoint=ENDPOINT,
        database=DATABASE,
        broker=broker_service,
        jar_free=path == "jar-free",
        **kwargs,
    )


class Mover(threading.Thread):
    """Keeps swapping every row's key between the halves [0, HALF) and [HALF, ROWS), and replacing one
    row by a new one, one transaction at a time, until stopped. Count and sum(v) never change."""

    def __init__(self, emulator) -> None:
        super().__init__(daemon=True)
        self.conninfo = emulator.admin_conninfo(DATABASE)
        self.stopping = threading.Event()
        self.transactions = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.conninfo) as conn:
                while not self.stopping.is_set():
                    with conn.transaction():
                        conn.execute(f"UPDATE rd_moving SET k = (k + {HALF}) % {ROWS}")
                        conn.execute(
                            "WITH gone AS (DELETE FROM rd_moving WHERE id = (SELECT min(id) FROM rd_moving)"
                            " RETURNING k, v) INSERT INTO rd_moving"
                            " SELECT (SELECT max(id) + 1 FROM rd_moving), k, v FROM gone"
                        )
                    self.transactions += 1
        except BaseException as e:  # reported by the test
            self.error = e

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)
        assert self.error is None, self.error
        assert self.transactions > 0


@pytest.fixture
def moving(db, emulator):
    db.execute("DROP TABLE IF EXISTS rd_moving")
    db.execute("CREATE TABLE rd_moving (id integer PRIMARY KEY, k integer NOT NULL, v integer NOT NULL)")
    db.execute(f"INSERT INTO rd_moving SELECT i, i, i % 97 FROM generate_series(0, {ROWS - 1}) i")
    db.execute("CREATE INDEX ON rd_moving (k)")
    db.execute("ANALYZE rd_moving")
    total = db.execute("SELECT sum(v) FROM rd_moving").fetchone()[0]
    mover = Mover(emulator)
    mover.start()
    deadline = time.monotonic() + 30
    while mover.transactions < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    yield total
    mover.stop()


def summary(df):
    row = df.agg(F.count("*"), F.countDistinct("id"), F.sum("v")).first()
    return tuple(int(x) for x in row)


@pytest.mark.parametrize("path", PATHS)
def test_consistent_read_equals_the_table_at_its_snapshot(spark, broker_service, emulator, moving, path):
    import psycopg

    with lakebase_spark.export_snapshot(ENDPOINT, database=DATABASE, broker=broker_service) as snap:
        df = read(spark, broker_service, "public.rd_moving", path, key="k", partitions=8, snapshot=snap)
        got = sorted(tuple(r) for r in df.select("id", "k", "v").collect())
        time.sleep(0.3)  # the writer moves on; a second action must still read the same moment
        again = summary(df)
        with psycopg.connect(emulator.admin_conninfo(DATABASE)) as check, check.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute(f"SET TRANSACTION SNAPSHOT '{snap.id}'")
            expected = sorted(cur.execute("SELECT id, k, v FROM rd_moving").fetchall())
    assert got == expected
    assert again == (ROWS, ROWS, moving)
    assert df.rdd.getNumPartitions() == 8


@pytest.mark.parametrize("path", PATHS)
def test_default_read_is_consistent(spark, broker_service, moving, path):
    for _ in range(3):
        df = read(spark, broker_service, "public.rd_moving", path, key="k", partitions=8, hold=120)
        assert summary(df) == (ROWS, ROWS, moving)


def test_inconsistent_read_shows_the_anomaly(spark, broker_service, moving):
    """Partitions read at different moments see rows moved between their ranges twice or not at all."""
    seen = []
    for _ in range(15):
        df = read(spark, broker_service, "public.rd_moving", "jdbc", key="k", partitions=8, consistent=False)
        count, distinct, total = summary(df)
        seen.append((count, distinct, total))
        if count != distinct or count != ROWS or total != moving:
            return
    pytest.fail(f"15 unsynchronised reads all matched the table's invariants: {seen}")


@pytest.mark.parametrize("path", PATHS)
def test_read_after_the_snapshot_ends_fails_clearly(spark, broker_service, db, path):
    db.execute("DROP TABLE IF EXISTS rd_small")
    db.execute("CREATE TABLE rd_small AS SELECT i AS id FROM generate_series(1, 100) i")
    snap = lakebase_spark.export_snapshot(ENDPOINT, database=DATABASE, broker=broker_service)
    df = read(spark, broker_service, "public.rd_small", path, partitions=2, snapshot=snap)
    assert df.count() == 100
    snap.close()
    assert "closed" in repr(snap)
    with pytest.raises(Exception, match=r"consistent read's snapshot .* cannot be imported"):
        df.count()


def test_snapshot_rules(spark, broker_service):
    with lakebase_spark.export_snapshot(ENDPOINT, database=DATABASE, broker=broker_service) as snap:
        with pytest.raises(SnapshotError, match="makes a read consistent"):
            read(spark, broker_service, "public.rd_small", "jdbc", snapshot=snap, consistent=False)
        with pytest.raises(SnapshotError, match="only be read on the database it was exported from"):
            lakebase_spark.read(
                spark,
                "public.x",
                endpoint=ENDPOINT,
                database="databricks_postgres",
                snapshot=snap,
                broker=broker_service,
            )
    with pytest.raises(SnapshotError, match="no longer held"):
        read(spark, broker_service, "public.rd_small", "jdbc", snapshot=snap)
    for bad in (0, -2, 2.5, True):
        with pytest.raises(lakebase_spark.PartitionKeyError, match="partitions must be"):
            read(spark, broker_service, "public.rd_small", "jdbc", partitions=bad)


def partition_sizes(df):
    counts = df.groupBy(F.spark_partition_id().alias("p")).count().collect()
    sizes = [r["count"] for r in counts]
    return sizes + [0] * (df.rdd.getNumPartitions() - len(sizes))


SKEWED_KEYS = {
    # 70 % of the rows crowd into a narrow band of the key space; the rest spread out.
    "text": "CASE WHEN i % 10 < 7 THEN 'user-000' || lpad((i % 5000)::text, 5, '0') || '-' || i "
    "ELSE md5(i::text) END",
    "uuid": "CASE WHEN i % 10 < 7 THEN ('00000000-0000-0000-0000-' || lpad(i::text, 12, '0'))::uuid "
    "ELSE md5(i::text)::uuid END",
    "numeric": "CASE WHEN i % 10 < 7 THEN 1000 + i / 1000000.0 ELSE i * 12.5 END",
    "timestamptz": "CASE WHEN i % 10 < 7 THEN timestamptz '2026-01-01' + i * interval '1 ms' "
    "ELSE timestamptz '2020-01-01' + i * interval '1 hour' END",
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", sorted(SKEWED_KEYS))
def test_any_key_type_balances_skewed_data(spark, broker_service, db, kind, path):
    table = f"rd_skew_{kind}"
    db.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    db.execute(
        sql.SQL("CREATE TABLE {} AS SELECT i AS id, {} AS key FROM generate_series(1, 40000) i").format(
            sql.Identifier(table), sql.SQL(SKEWED_KEYS[kind])
        )
    )
    db.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    df = read(spark, broker_service, f"public.{table}", path, key="key", partitions=6)
    sizes = partition_sizes(df)
    assert sum(sizes) == 40000
    assert df.select("id").distinct().count() == 40000
    assert max(sizes) / (sum(sizes) / len(sizes)) <= 1.5, sizes


@pytest.mark.parametrize("path", PATHS)
def test_table_without_a_key_reads_in_page_ranges(spark, broker_service, db, path):
    db.execute("DROP TABLE IF EXISTS rd_heap")
    db.execute("CREATE TABLE rd_heap (a integer, b text)")  # no key, duplicates, holes
    db.execute("INSERT INTO rd_heap SELECT i % 1000, 'x' || (i % 7) FROM generate_series(1, 30000) i")
    db.execute("DELETE FROM rd_heap WHERE a BETWEEN 200 AND 400")
    expected = collections.Counter(db.execute("SELECT a, b FROM rd_heap").fetchall())
    df = read(spark, broker_service, "public.rd_heap", path, partitions=5)
    assert df.rdd.getNumPartitions() == 5
    got = collections.Counter(tuple(r) for r in df.collect())
    assert got == expected
    sizes = partition_sizes(df)
    assert min(sizes) > 0, sizes


@pytest.mark.parametrize("path", PATHS)
def test_composite_key_balances_and_reads_null_members_once(spark, broker_service, db, path):
    # region is skewed (60 % of rows in one region), so region alone cannot balance 6 partitions; the
    # pair (region, id) can. Some rows have a NULL region or id: each must be read exactly once.
    db.execute("DROP TABLE IF EXISTS rd_composite")
    db.execute(
        "CREATE TABLE rd_composite AS SELECT i AS n, "
        "CASE WHEN i % 500 = 0 THEN NULL WHEN i % 10 < 6 THEN 'eu-west' ELSE 'r' || (i % 37) END AS region, "
        "CASE WHEN i % 700 = 0 THEN NULL ELSE (i * 7919) % 100000 END AS id "
        "FROM generate_series(1, 40000) i"
    )
    df = read(spark, broker_service, "public.rd_composite", path, key=("region", "id"), partitions=6)
    assert df.rdd.getNumPartitions() == 6
    sizes = partition_sizes(df)
    assert sum(sizes) == 40000
    assert df.select("n").distinct().count() == 40000
    assert max(sizes) / (sum(sizes) / len(sizes)) <= 1.5, sizes
    with pytest.raises(lakebase_spark.reading.PartitionKeyError, match="twice"):
        read(spark, broker_service, "public.rd_composite", path, key=("id", "id"))
    with pytest.raises(lakebase_spark.reading.PartitionKeyError, match="no column 'nope'"):
        read(spark, broker_service, "public.rd_composite", path, key=["region", "nope"])


@pytest.mark.parametrize("path", PATHS)
def test_text_key_ranges_use_the_columns_collation_and_index(spark, broker_service, db, path):
    # An ICU collation orders 'b' < 'C' < 'd' (bytes order 'C' < 'b'), so ranges cut in byte order and
    # compared in the column's order would overlap or leave gaps; compared under COLLATE "C", no index
    # of the column would serve them.
    from lakebase_spark.names import TableName
    from lakebase_spark.reading.ranges import key_predicates

    db.execute("DROP TABLE IF EXISTS rd_icu")
    db.execute('CREATE TABLE rd_icu (code text COLLATE "en-x-icu" PRIMARY KEY, n integer)')
    db.execute(
        "INSERT INTO rd_icu SELECT CASE WHEN i % 2 = 0 THEN upper(md5(i::text)) ELSE md5(i::text) END "
        "|| i, i FROM generate_series(1, 40000) i"
    )
    db.execute("ANALYZE rd_icu")
    predicates = key_predicates(db, TableName.parse("public.rd_icu"), "code", 6)
    assert len(predicates) == 6
    assert not any("COLLATE" in p for p in predicates)
    for predicate in predicates[1:]:
        plan = "\n".join(r[0] for r in db.execute(f"EXPLAIN SELECT * FROM rd_icu WHERE {predicate}"))
        assert "Seq Scan" not in plan, plan
    df = read(spark, broker_service, "public.rd_icu", path, key="code", partitions=6)
    sizes = partition_sizes(df)
    assert sum(sizes) == 40000
    assert df.select("n").distinct().count() == 40000
    assert max(sizes) / (sum(sizes) / len(sizes)) <= 1.5, sizes


SPECIALS = {  # values Postgres allows in each key type that Python (and a psycopg fetch) cannot hold
    "d": ("date", ["infinity", "-infinity", "0044-03-15 BC"]),
    "ts": ("timestamp", ["infinity", "-infinity", "0044-03-15 12:00:00 BC"]),
    "tz": ("timestamptz", ["infinity", "-infinity", "0044-03-15 12:00:00+00 BC"]),
    "n": ("numeric", ["NaN", "Infinity", "-Infinity"]),
}


@pytest.fixture
def specials(db):
    db.execute("DROP TABLE IF EXISTS public.rd_specials")
    db.execute("CREATE TABLE public.rd_specials (id bigint, d date, ts timestamp, tz timestamptz, n numeric)")
    db.execute(
        "INSERT INTO public.rd_specials SELECT g, date '2024-01-01' + g, timestamp '2024-01-01' + g * "
        "interval '1 hour', timestamptz '2024-01-01 00:00+00' + g * interval '1 hour', g / 7.0 "
        "FROM generate_series(1, 3000) g"
    )
    db.execute("INSERT INTO public.rd_specials (id) VALUES (0)")  # NULL keys
    for i, (column, (kind, values)) in enumerate(SPECIALS.items()):
        for j, value in enumerate(values):  # each special value on 40 rows: pg_stats lists them as MCVs
            first = 10_000 * (i + 1) + 100 * j
            db.execute(
                f"INSERT INTO public.rd_specials (id, {column}) "
                f"SELECT g, %s::{kind} FROM generate_series({first}, {first + 39}) g",
                (value,),
            )
    return [row[0] for row in db.execute("SELECT id FROM public.rd_specials ORDER BY id")]


@pytest.mark.parametrize("analyzed", [False, True], ids=["sampled", "analyzed"])
def test_infinity_nan_and_bc_keys_are_read_exactly_once(spark, broker_service, db, specials, analyzed):
    from lakebase_spark.names import TableName
    from lakebase_spark.reading.ranges import key_predicates

    if analyzed:
        db.execute("ANALYZE public.rd_specials")
    table = TableName.parse("public.rd_specials")
    for column in SPECIALS:
        predicates = key_predicates(db, table, column, 4)
        assert len(predicates) == 4, column
        counts = [
            db.execute(f"SELECT count(*) FROM public.rd_specials WHERE {p}").fetchone()[0] for p in predicates
        ]
        assert sum(counts) == len(specials), (column, predicates)
        assert max(counts) < len(specials) * 0.6, (column, counts)  # split, not all in one range
    # And through Spark, on both paths' planner (the key column's own values stay out of the rows read)
    df = read(spark, broker_service, "public.rd_specials", "jdbc", key="tz", partitions=4).select("id")
    assert sorted(r.id for r in df.collect()) == specials


def test_composite_cuts_follow_the_columns_order_not_their_text(db):
    """Cut rows are sampled as text (so every value arrives) but sorted as the columns: by text, id 10
    would sort before 9 and the ranges would overlap and leave gaps."""
    from lakebase_spark.names import TableName
    from lakebase_spark.reading.ranges import composite_predicates

    db.execute("DROP TABLE IF EXISTS public.rd_text_order")
    db.execute(
        "CREATE TABLE public.rd_text_order AS SELECT 'a'::text AS k, g AS id FROM generate_series(1, 300) g"
    )
    predicates = composite_predicates(db, TableName.parse("public.rd_text_order"), ["k", "id"], 5)
    counts = [
        db.execute(f"SELECT count(*) FROM public.rd_text_order WHERE {p}").fetchone()[0] for p in predicates
    ]
    assert len(counts) == 5
    assert sum(counts) == 300
    assert min(counts) >= 40, counts
