"""The COPY writer (``lakebase_spark.write``) against the emulator's real Postgres with real Spark.

Types round-trip unchanged; every save mode does what the README says; a failed job leaves what the
README says; upsert matches a Python model; bad input fails before any row is written.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from psycopg import sql

from lakebase_spark import InvalidTableNameError, WriteError, WriteInputError, WriteResult, write
from lakebase_spark.names import TableName
from lakebase_spark.writing.commits import stage_name

from ..concurrency import run_together
from ..conftest import DATABASE, ENDPOINT
from ..frames import assert_same_rows

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]


@pytest.fixture
def target(broker_service):
    def run(df, table, **kwargs) -> WriteResult:
        return write(df, table, endpoint=ENDPOINT, database=DATABASE, broker=broker_service, **kwargs)

    return run


@pytest.fixture
def db(admin, emulator):
    """The admin connection acting as the principal, so tables belong to the role the writer logs in as."""
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    return admin


def read(spark, opts, table: str):
    return spark.read.format("jdbc").options(**opts).option("dbtable", table).load()


def counts(db, table: str) -> tuple[int, int]:
    return db.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}").fetchone()


def committed(db, write_id: str, log: str = "public.lakebase_spark_commits") -> tuple[int, int]:
    """(partitions, rows) the commit log holds for an unfinished write."""
    parts, rows = db.execute(
        f"SELECT count(*), coalesce(sum(rows), 0) FROM {log} WHERE write_id = %s AND part >= 0", (write_id,)
    ).fetchone()
    return parts, rows


# -- types ---------------------------------------------------------------------------------------------

ALL_TYPES = """
    id bigint PRIMARY KEY, i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
    n numeric(38,10), money numeric(12,2), t text, b boolean, d date, ts timestamp, tz timestamptz,
    bin bytea, u uuid, j json, jb jsonb, ai integer[], at text[], af double precision[], ab boolean[],
    ad date[], atz timestamptz[], an numeric(10,3)[]
"""
ALL_VALUES = r"""
INSERT INTO {t} VALUES
 (1, 32767, 2147483647, 9223372036854775807, 'NaN', 'Infinity',
  9999999999999999999999999999.9999999999, 9999999999.99,
  E'tab\there\nnew line\\back\\slash \"q\" ''s'' ünï €',
  true, '0001-01-01', '1969-12-31 23:59:59.999999', '2024-02-29 12:34:56.123456+00',
  '\x000102ff', '123e4567-e89b-12d3-a456-426614174000',
  '{{"a": [1, 2, {{"b": null}}]}}', '{{"z": "é\\n", "a": 1}}',
  '{{1,NULL,-3}}', ARRAY['a,b', 'c"d', 'e\f', '{{x}}', 'NULL', '', NULL, E'tab\tnl\n'],
  '{{NaN,Infinity,-Infinity,1.5e300}}', '{{true,false,NULL}}', '{{2024-01-01,NULL}}',
  ARRAY['2024-01-01 00:00:00+00'::timestamptz, NULL], '{{1.250,-0.001}}'),
 (2, -32768, -2147483648, -9223372036854775808, '-Infinity', '-0',
  -9999999999999999999999999999.9999999999, -0.01, '', false, '9999-12-31',
  '2262-04-11 23:47:16.854775', '1900-01-01 00:00:00+00',
  '\x', '00000000-0000-0000-0000-000000000000', '[]', '{{}}',
  '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}'),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL),
 (4, 0, 0, 0, 1.17549435e-38, 2.2250738585072014e-308, 0.0000000001, 0, 'x', true, '1970-01-01',
  '1970-01-01 00:00:00', '1970-01-01 00:00:00.000001+00', '\xdeadbeef',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', 'null', '"s"', '{{0}}', '{{" spaced "}}', '{{0.1}}',
  '{{false}}', '{{1999-12-31}}', '{{1970-01-01 00:00:00+00}}', '{{0.000}}')
"""


def test_every_type_round_trips_unchanged(spark, opts, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_types_src, public.w_types_dst")
    db.execute(f"CREATE TABLE public.w_types_src ({ALL_TYPES})")
    db.execute(f"CREATE TABLE public.w_types_dst ({ALL_TYPES})")
    db.execute(ALL_VALUES.format(t="public.w_types_src"))
    source = read(spark, opts, "public.w_types_src")
    result = target(source, "public.w_types_dst")
    assert result.rows == 4
    assert_same_rows(read(spark, opts, "public.w_types_dst"), source, allow_nan_equality=True)
    # And in Postgres itself, value for value (json has no equality operator: compare its text).
    columns = (
        "id, i2, i4, i8, f4, f8, n, money, t, b, d, ts, tz, bin, u, jb, ai, at, af, ab, ad, atz, an, j::text"
    )
    differ = db.execute(
        f"SELECT count(*) FROM ((SELECT {columns} FROM public.w_types_src) "
        f"EXCEPT ALL (SELECT {columns} FROM public.w_types_dst)) x"
    ).fetchone()[0]
    assert differ == 0


def test_spark_values_without_a_postgres_source_round_trip(spark, opts, target, db) -> None:
    from decimal import Decimal

    db.execute("DROP TABLE IF EXISTS public.w_from_spark")
    df = spark.createDataFrame(
        [
            (1, "a\\b\tc\nd\re", b"\x00\xff", [["a", None], ["c", "d"]], Decimal("-12345.678"), 1.5, -7),
            (2, None, None, None, None, float("nan"), None),
            (3, "", b"", [], Decimal("0.000"), float("-inf"), 127),
        ],
        "id long, s string, bin binary, grid array<array<string>>, dec decimal(20,3), f double, tiny tinyint",
    )
    db.execute(
        "CREATE TABLE public.w_from_spark (id bigint, s text, bin bytea, grid text[], dec numeric(20,3), "
        "f double precision, tiny smallint)"
    )
    target(df.where("id <> 1"), "public.w_from_spark")  # jagged-free rows; the 2-D array below
    target(df.where("id = 1"), "public.w_from_spark")
    back = db.execute("SELECT grid, s, bin FROM public.w_from_spark WHERE id = 1").fetchone()
    assert back == ([["a", None], ["c", "d"]], "a\\b\tc\nd\re", b"\x00\xff")
    assert db.execute("SELECT grid, dec, tiny FROM public.w_from_spark WHERE id = 3").fetchone() == (
        [],
        Decimal("0.000"),
        127,
    )


# -- append, exactly once and reruns ---------------------------------------------------------------------


def test_append_creates_a_missing_table_with_sparks_type_mapping(spark, opts, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_created")
    df = spark.range(0, 10_000, numPartitions=4).selectExpr(
        "id", "concat('v', id) AS v", "cast(id AS decimal(12,2)) AS amount", "id % 2 = 0 AS even"
    )
    result = target(df, "public.w_created")
    assert result.rows == 10_000
    assert not result.skipped
    assert counts(db, "public.w_created") == (10_000, 10_000)
    types = dict(
        db.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'w_created'"
        ).fetchall()
    )
    assert types == {"id": "bigint", "v": "text", "amount": "numeric", "even": "boolean"}
    assert_same_rows(read(spark, opts, "public.w_created"), df)


def test_a_finished_write_id_is_a_no_op_when_run_again(spark, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_rerun")
    df = spark.range(0, 1000, numPartitions=3).selectExpr("id")
    first = target(df, "public.w_rerun", write_id="nightly-2026-11-30")
    again = target(df, "public.w_rerun", write_id="nightly-2026-11-30")
    assert (first.rows, first.skipped) == (1000, False)
    assert (again.rows, again.skipped) == (1000, True)
    assert counts(db, "public.w_rerun") == (1000, 1000)
    # The commit log: a marker per partition, and the row that says the whole write is done.
    log = db.execute(
        "SELECT part, rows FROM public.lakebase_spark_commits "
        "WHERE write_id = 'nightly-2026-11-30' ORDER BY part"
    ).fetchall()
    assert [part for part, _ in log] == [-1, 0, 1, 2]
    assert log[0][1] == sum(rows for _, rows in log[1:]) == 1000


def test_a_failed_append_says_what_it_left_and_its_rerun_finishes_it(spark, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_resume")
    db.execute("CREATE TABLE public.w_resume (id bigint PRIMARY KEY)")
    df = spark.range(0, 8000, numPartitions=4).selectExpr("id")
    fault = {"lakebase.write.fault": "fail-before-commit", "lakebase.write.fault.partitions": "2"}
    with pytest.raises(WriteError) as failed:
        target(df, "public.w_resume", write_id="resume-1", options=fault)
    message = str(failed.value)
    assert "injected fault fail-before-commit in partition 2" in message
    parts, rows = committed(db, "resume-1")
    # local[2] runs no task twice: partition 2 failed; the other three ran to their end (the writer waits for
    # the failed job's running tasks), and the message reports exactly what the commit log and table hold.
    assert f"holds the {parts} partition(s) ({rows or 0} rows)" in message
    assert counts(db, "public.w_resume") == (rows or 0, rows or 0)
    assert "write_id='resume-1'" in message
    done = target(df, "public.w_resume", write_id="resume-1")
    assert counts(db, "public.w_resume") == (8000, 8000)
    assert done.rows == 8000


def test_a_rerun_with_other_partitioning_is_refused(spark, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_repartitioned")
    db.execute("CREATE TABLE public.w_repartitioned (id bigint)")
    # Partition 0 holds one row and commits at once; partition 1 holds the rest and fails before its commit.
    df = spark.range(0, 200_000, numPartitions=2).where("id = 0 OR id >= 100000")
    fault = {"lakebase.write.fault": "fail-before-commit", "lakebase.write.fault.partitions": "1"}
    with pytest.raises(WriteError, match=r"holds the 1 partition\(s\) \(1 rows\)"):
        target(df, "public.w_repartitioned", write_id="parts-1", options=fault)
    with pytest.raises(WriteError, match="was started with 2 partitions and this run has 5"):
        target(df.repartition(5), "public.w_repartitioned", write_id="parts-1")
    assert counts(db, "public.w_repartitioned") == (1, 1)


def test_concurrent_runs_of_one_write_commit_each_partition_once(spark, target, db) -> None:
    """Two attempts of every partition at once, as speculation makes them: the markers' key decides."""
    db.execute("DROP TABLE IF EXISTS public.w_race")
    db.execute("CREATE TABLE public.w_race (id bigint)")  # no key: duplicates would show
    df = spark.range(0, 40_000, numPartitions=4).selectExpr("id")
    results = run_together(lambda _: target(df, "public.w_race", write_id="race-1"), 2)
    assert all(isinstance(r, WriteResult) for r in results), results
    assert counts(db, "public.w_race") == (40_000, 40_000)


# -- overwrite ---------------------------------------------------------------------------------------


class Poller:
    """Counts a table's rows over and over from its own connection while a write runs."""

    def __init__(self, conninfo: str, table: str) -> None:
        self.seen: set[int] = set()
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(conninfo, table), daemon=True)

    def _run(self, conninfo: str, table: str) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            while not self._stop.is_set():
                self.seen.add(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                self.polls += 1
                time.sleep(0.005)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def make_old_table(db, table: str, rows: int) -> None:
    db.execute(f"DROP TABLE IF EXISTS {table}")
    db.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text NOT NULL DEFAULT 'x')")
    db.execute(f"CREATE INDEX ON {table} (v)")
    db.execute(f"INSERT INTO {table} SELECT g, 'old' FROM generate_series(1, {rows}) g")
    db.execute(f"GRANT SELECT ON {table} TO PUBLIC")


def test_overwrite_swaps_in_one_transaction_and_keeps_the_table(spark, target, db, emulator) -> None:
    make_old_table(db, "public.w_over", 3000)
    df = spark.range(0, 50_000, numPartitions=4).selectExpr("id", "'new' AS v")
    with Poller(emulator.admin_conninfo(DATABASE), "public.w_over") as poller:
        result = target(df, "public.w_over", mode="overwrite")
    assert result.rows == 50_000
    assert poller.polls > 10
    assert poller.seen <= {3000, 50_000}, poller.seen  # never empty, never partial
    assert db.execute("SELECT count(*), min(v), max(v) FROM public.w_over").fetchone() == (
        50_000,
        "new",
        "new",
    )
    indexes = db.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'w_over'").fetchone()[0]
    assert indexes == 2  # primary key and the index on v survive
    grants = db.execute(
        "SELECT count(*) FROM information_schema.role_table_grants "
        "WHERE table_name = 'w_over' AND grantee = 'PUBLIC'"
    ).fetchone()[0]
    assert grants == 1
    stage = stage_name(TableName("public", "w_over"), result.write_id)
    assert db.execute("SELECT to_regclass(%s)", (stage.quoted(),)).fetchone() == (None,)  # the stage is gone


def test_a_failed_overwrite_leaves_the_target_unchanged(spark, target, db, emulator) -> None:
    make_old_table(db, "public.w_over_fail", 3000)
    df = spark.range(0, 50_000, numPartitions=4).selectExpr("id", "'new' AS v")
    fault = {"lakebase.write.fault": "fail-before-commit", "lakebase.write.fault.partitions": "3"}
    with (
        Poller(emulator.admin_conninfo(DATABASE), "public.w_over_fail") as poller,
        pytest.raises(WriteError, match="The target is unchanged") as failed,
    ):
        target(df, "public.w_over_fail", mode="overwrite", write_id="over-1", options=fault)
    assert poller.seen == {3000}
    assert db.execute("SELECT count(*), max(v) FROM public.w_over_fail").fetchone() == (3000, "old")
    assert "rerun with write_id='over-1' to resume" in str(failed.value)
    # The rerun resumes the staging table and finishes the swap.
    assert target(df, "public.w_over_fail", mode="overwrite", write_id="over-1").rows == 50_000
    assert db.execute("SELECT count(*), max(v) FROM public.w_over_fail").fetchone() == (50_000, "new")


# -- data Postgres cannot take -----------------------------------------------------------------------


def test_a_nul_character_fails_naming_the_column_and_row(spark, target, db) -> None:
    make_old_table(db, "public.w_nul", 10)
    df = spark.createDataFrame([(100, "fine"), (101, "bad\x00value")], "id long, v string").coalesce(1)
    with pytest.raises(WriteError) as failed:
        target(df, "public.w_nul", mode="overwrite")
    message = str(failed.value)
    assert "column 'v' contains a NUL character" in message
    assert "row 2 of partition 0" in message
    assert "The target is unchanged" in message
    assert db.execute("SELECT count(*), max(v) FROM public.w_nul").fetchone() == (10, "old")


def test_a_number_over_the_columns_precision_fails_naming_column_and_row(spark, target, db) -> None:
    from decimal import Decimal

    db.execute("DROP TABLE IF EXISTS public.w_precision")
    db.execute("CREATE TABLE public.w_precision (id bigint, amount numeric(6,2))")
    db.execute("INSERT INTO public.w_precision VALUES (1, 1.00)")
    rows = [(i, Decimal("12.50")) for i in range(2, 6)] + [(6, Decimal("123456.78"))]
    df = spark.createDataFrame(rows, "id long, amount decimal(10,2)").coalesce(1)
    with pytest.raises(WriteError) as failed:
        target(df, "public.w_precision", atomic=True)
    message = str(failed.value)
    assert "numeric field overflow" in message
    assert "row 5, column 'amount'" in message
    assert "The target is unchanged" in message
    assert db.execute("SELECT count(*) FROM public.w_precision").fetchone() == (1,)


# -- upsert ------------------------------------------------------------------------------------------


def test_upsert_matches_a_python_model(spark, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_upsert")
    db.execute("CREATE TABLE public.w_upsert (id bigint PRIMARY KEY, name text, score integer, seq integer)")
    initial = {i: (f"n{i}", i, 0) for i in range(0, 2000)}
    db.execute("INSERT INTO public.w_upsert SELECT g, 'n' || g, g, 0 FROM generate_series(0, 1999) g")
    # Half the keys update existing rows, half are new; some keys repeat (seq says which wins); NULLs in
    # non-key columns overwrite values.
    incoming = []
    for i in range(1000, 3000):
        incoming.append((i, None if i % 7 == 0 else f"m{i}", None if i % 5 == 0 else -i, 1))
    for i in range(1000, 3000, 10):
        incoming.append((i, f"late{i}", i * 2, 2))  # a later version of the same key
        incoming.append((i, f"early{i}", i * 3, 0))  # an earlier one
    expected = dict(initial)
    for key, name, score, seq in sorted(incoming, key=lambda r: r[3]):
        expected[key] = (name, score, seq)
    df = spark.createDataFrame(incoming, "id long, name string, score int, seq int").repartition(3)
    result = target(df, "public.w_upsert", mode="upsert", key="id", order_by="seq")
    assert result.rows == 2000  # one insert or update per distinct incoming key
    got = {r[0]: (r[1], r[2], r[3]) for r in db.execute("SELECT id, name, score, seq FROM public.w_upsert")}
    assert got == expected


def test_upsert_refuses_repeated_keys_without_an_order(spark, target, db) -> None:
    make_old_table(db, "public.w_upsert_dup", 5)
    df = spark.createDataFrame([(1, "a"), (1, "b"), (9, "c")], "id long, v string")
    with pytest.raises(WriteInputError, match=r"key \['id'\] repeats in the input, e.g. \[1\]"):
        target(df, "public.w_upsert_dup", mode="upsert", key="id", write_id="dup-1")
    assert db.execute("SELECT count(*), max(v) FROM public.w_upsert_dup").fetchone() == (5, "old")
    stage = stage_name(TableName("public", "w_upsert_dup"), "dup-1")
    assert db.execute("SELECT to_regclass(%s)", (stage.quoted(),)).fetchone() == (None,)  # dropped


def test_upsert_refuses_null_keys(spark, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_upsert_null")
    db.execute("CREATE TABLE public.w_upsert_null (a bigint, b text, v text, UNIQUE (a, b))")
    df = spark.createDataFrame([(1, "x", "v"), (2, None, "v")], "a long, b string, v string")
    with pytest.raises(WriteInputError, match=r"1 row\(s\) have a NULL in key \['a', 'b'\]"):
        target(df, "public.w_upsert_null", mode="upsert", key=["a", "b"])
    assert db.execute("SELECT count(*) FROM public.w_upsert_null").fetchone() == (0,)


# -- save modes --------------------------------------------------------------------------------------


def test_errorifexists_and_ignore_behave_as_in_spark(spark, target, db) -> None:
    make_old_table(db, "public.w_modes", 4)
    df = spark.createDataFrame([(100, "new")], "id long, v string")
    with pytest.raises(WriteInputError, match="already exists"):
        target(df, "public.w_modes", mode="errorifexists")
    assert target(df, "public.w_modes", mode="ignore").skipped
    assert db.execute("SELECT count(*) FROM public.w_modes").fetchone() == (4,)
    db.execute("DROP TABLE IF EXISTS public.w_modes_new")
    assert target(df, "public.w_modes_new", mode="errorifexists").rows == 1
    db.execute("DROP TABLE IF EXISTS public.w_modes_new2")
    assert target(df, "public.w_modes_new2", mode="ignore").rows == 1


# -- bad input: refused before any row moves -----------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("public.orders; DROP TABLE public.w_bad", "is not a plain identifier"),
        ('public."unterminated', "a double quote is not closed"),
        ('"a"b', "does not parse"),
        ("a.b.c", "must be 'table' or 'schema.table'"),
        ("x" * 64, "longer than Postgres' 63 bytes"),
        ("public.\x01evil", "is not a plain identifier"),
        (("public", "tab\nle"), "control character"),
        ("", "must be a name"),
    ],
)
def test_hostile_or_unquotable_table_names_are_refused(spark, target, table, message) -> None:
    df = spark.createDataFrame([(1,)], "id long")
    with pytest.raises(InvalidTableNameError, match=message):
        target(df, table)


def test_quoted_names_are_taken_literally(spark, target, db) -> None:
    db.execute('DROP TABLE IF EXISTS public."Mixed Case"')
    df = spark.createDataFrame([(1,)], "id long")
    assert target(df, '"public"."Mixed Case"').rows == 1
    assert db.execute('SELECT count(*) FROM public."Mixed Case"').fetchone() == (1,)


def test_bad_input_is_refused_before_any_row_is_written(spark, target, db, emulator) -> None:
    make_old_table(db, "public.w_bad", 3)
    good = spark.createDataFrame([(10, "x")], "id long, v string")
    cases = [
        (good.withColumn("extra", good.id), "column 'extra' of the DataFrame is not a column of"),
        # Types Postgres does not assign what Spark's JDBC writer binds (boolean, bytea, text[]) are refused
        # as Spark's writer is refused, naming each column; a number into text is not (Spark writes it too).
        (good.selectExpr("id = 10 AS id", "v"), "Postgres has no assignment from boolean"),
        (good.selectExpr("cast(v AS binary) AS id", "v"), "from bytea (what Spark's JDBC writer sends)"),
        (good.selectExpr("id", "named_struct('a', 1) AS v"), "to_json"),
        (good.selectExpr("id", "map('a', 1) AS v"), "to_json"),
        (good.selectExpr("array(v) AS id", "v"), "Postgres has no assignment from text[]"),
    ]
    for df, message in cases:
        with pytest.raises(WriteInputError) as refused:
            target(df, "public.w_bad")
        assert message in str(refused.value)
    with pytest.raises(WriteInputError, match=r"column\(s\) \['nope'\] are not columns of the DataFrame"):
        target(good, "public.w_bad", mode="upsert", key="nope")
    with pytest.raises(WriteInputError, match="needs a primary key or unique index on exactly those"):
        target(good, "public.w_bad", mode="upsert", key="v")
    with pytest.raises(WriteInputError, match="mode='upsert' needs key="):
        target(good, "public.w_bad", mode="upsert")
    with pytest.raises(WriteInputError, match="mode must be one of"):
        target(good, "public.w_bad", mode="merge")
    with pytest.raises(WriteInputError, match="does not exist: create it with a primary key"):
        target(good, "public.w_bad_missing", mode="upsert", key="id")
    assert db.execute("SELECT count(*) FROM public.w_bad").fetchone() == (3,)
    assert db.execute("SELECT to_regclass('public.w_bad_missing')").fetchone() == (None,)


def test_the_copy_job_repr_holds_no_secret(spark, opts) -> None:
    from lakebase_spark.writing.jobs import CopyJob

    job = CopyJob(spark.range(1), [], opts, {}, "w-1")
    assert opts["lakebase.broker.secret"] not in repr(job)
    assert "***" in repr(job)


# -- a failed job's other tasks: the error counts what they committed too ------------------------------------


def test_a_failed_appends_count_includes_tasks_that_commit_after_the_job_failed(
    spark, target, db, emulator
) -> None:
    """Spark fails a job at its first failed task and does not wait for the others: partition 1 here is
    still committing (its marker insert waits on a lock the test holds) when partition 0's failure ends the
    job. The error must count partition 1, which the table ends up holding."""
    db.execute("DROP TABLE IF EXISTS public.w_straggler")
    db.execute("CREATE TABLE public.w_straggler (id bigint)")
    target(spark.range(1), "public.w_straggler_seed")  # the commit log exists before the lock is taken
    df = spark.range(0, 1_200_000, numPartitions=2)
    fault = {"lakebase.write.fault": "fail-before-commit", "lakebase.write.fault.partitions": "0"}
    released: list[float] = []

    def hold_the_commit_log() -> None:
        with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while (
                time.monotonic() < deadline
                and not conn.execute(
                    'SELECT count(*) FROM pg_stat_activity WHERE query LIKE \'COPY "public"."w_straggler"%\''
                ).fetchone()[0]
            ):
                time.sleep(0.01)
            with conn.transaction():
                conn.execute("LOCK TABLE public.lakebase_spark_commits IN SHARE MODE")
                while (
                    time.monotonic() < deadline
                    and not conn.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                        "'public.lakebase_spark_commits'::regclass"
                    ).fetchone()[0]
                ):
                    time.sleep(0.01)  # until partition 1 waits to insert its marker
                time.sleep(2)  # the job has failed by now (partition 0 fails at its commit)
                released.append(time.monotonic())

    holder = threading.Thread(target=hold_the_commit_log)
    holder.start()
    try:
        with pytest.raises(WriteError) as failed:
            target(df, "public.w_straggler", write_id="straggler-1", options=fault)
    finally:
        holder.join()
    assert released  # the lock was taken, and partition 1 really waited on it
    parts, rows = committed(db, "straggler-1")
    assert (parts, rows) == (1, 600_000)  # partition 1 committed after the job had failed
    assert f"holds the {parts} partition(s) ({rows} rows)" in str(failed.value)
    assert counts(db, "public.w_straggler") == (600_000, 600_000)


# -- write ids: one rule on both sides, one write per id ---------------------------------------------------


def test_a_write_id_is_up_to_512_characters_counted_as_python_and_the_jvm_count_them(
    spark, target, db
) -> None:
    df = spark.createDataFrame([(1,)], "id long")
    db.execute("DROP TABLE IF EXISTS public.w_emoji_id")
    emoji = "\U0001f600" * 300  # 300 characters, 600 UTF-16 units: the JVM used to refuse it mid-job
    assert target(df, "public.w_emoji_id", write_id=emoji).rows == 1
    assert target(df, "public.w_emoji_id", write_id=emoji).skipped
    db.execute("DROP TABLE IF EXISTS public.w_long_id")
    for bad in ("x" * 513, "\U0001f600" * 513, "a\x00b", "", "lone \ud800 surrogate"):
        with pytest.raises(WriteInputError, match="write_id"):
            target(df, "public.w_long_id", write_id=bad)
    assert db.execute("SELECT to_regclass('public.w_long_id')").fetchone() == (
        None,
    )  # refused before creating


def test_reusing_a_write_id_for_another_write_is_refused_naming_the_first(spark, target, db) -> None:
    make_old_table(db, "public.w_reuse", 3)
    df = spark.createDataFrame([(100, "new")], "id long, v string")
    first = target(df, "public.w_reuse", write_id="reuse-1")
    assert first.rows == 1
    for other, expected in (
        ({"mode": "overwrite"}, "mode='overwrite'"),
        ({"mode": "append", "atomic": True}, "atomic=True"),
    ):
        with pytest.raises(WriteInputError, match="was first used for another write") as refused:
            target(df, "public.w_reuse", write_id="reuse-1", **other)
        message = str(refused.value)
        assert "mode='append'" in message  # the first use
        assert "finished with 1 rows" in message
        assert expected in message
    with pytest.raises(WriteInputError, match=r"columns \['id'\]"):
        target(df.select("id"), "public.w_reuse", write_id="reuse-1")
    assert db.execute("SELECT count(*) FROM public.w_reuse").fetchone() == (4,)  # old rows + the first write
    assert target(df, "public.w_reuse", write_id="reuse-1").skipped  # the same write: a no-op


def test_a_failed_errorifexists_write_resumes_though_its_table_now_exists(spark, target, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.w_create_resume")
    df = spark.range(0, 4000, numPartitions=4).selectExpr("id")
    fault = {"lakebase.write.fault": "fail-before-commit", "lakebase.write.fault.partitions": "3"}
    with pytest.raises(WriteError):
        target(df, "public.w_create_resume", mode="errorifexists", write_id="create-1", options=fault)
    done = target(df, "public.w_create_resume", mode="errorifexists", write_id="create-1")
    assert (done.rows, done.skipped) == (4000, False)
    assert counts(db, "public.w_create_resume") == (4000, 4000)
    with pytest.raises(WriteInputError, match="already exists"):  # a new write id: the table exists
        target(df, "public.w_create_resume", mode="errorifexists")


# -- upsert: one winner per key, the same on every run ------------------------------------------------------


def test_upsert_ties_between_different_rows_are_refused_and_identical_ones_are_not(spark, target, db) -> None:
    make_old_table(db, "public.w_upsert_tie", 5)
    db.execute("ALTER TABLE public.w_upsert_tie ADD COLUMN seq int, ADD COLUMN n int")
    tied = spark.createDataFrame(
        [(1, "a", 7, 1), (1, "b", 7, 2), (2, "c", 1, 1)], "id long, v string, seq int, n int"
    )
    with pytest.raises(WriteInputError, match=r"differ but tie on order_by \['seq'\], e.g. \[1\]"):
        target(tied, "public.w_upsert_tie", mode="upsert", key="id", order_by="seq")
    assert db.execute("SELECT count(*) FROM public.w_upsert_tie WHERE v <> 'old'").fetchone() == (0,)
    # A second order_by column breaks the tie: the greatest (seq, n) wins, on every run.
    for _ in range(2):
        target(tied, "public.w_upsert_tie", mode="upsert", key="id", order_by=["seq", "n"])
        assert db.execute("SELECT v FROM public.w_upsert_tie WHERE id = 1").fetchone() == ("b",)
    same = spark.createDataFrame([(3, "x", 5, 0), (3, "x", 5, 0)], "id long, v string, seq int, n int")
    assert target(same, "public.w_upsert_tie", mode="upsert", key="id", order_by="seq").rows == 1


# -- the commit log's retention ---------------------------------------------------------------------------


def test_the_commit_log_expires_what_reruns_no_longer_need(spark, target, db, emulator) -> None:
    from lakebase_spark.writing.commits import MARKER_GRACE, RETENTION, CommitLog, stage_name

    db.execute("DROP TABLE IF EXISTS public.w_retention")
    df = spark.range(0, 300, numPartitions=3).selectExpr("id")
    target(df, "public.w_retention", write_id="old-finished")
    target(df, "public.w_retention", write_id="recent-finished")
    # An old unfinished staged write, with its stage, and a recent one still to be resumed.
    for write_id, age in (("old-abandoned", RETENTION * 2), ("recent-abandoned", MARKER_GRACE)):
        stage = stage_name(TableName("public", "w_retention"), write_id)
        db.execute(f"CREATE UNLOGGED TABLE {stage.quoted()} (id bigint)")
        db.execute(f'CREATE UNLOGGED TABLE {stage.quoted()[:-1]}_commits" (x int)')
        db.execute(
            "INSERT INTO public.lakebase_spark_commits (target, write_id, part, parts, rows, attempt, mode, "
            "committed_at) VALUES ('\"public\".\"w_retention\"', %s, -2, 0, 0, 0, 'overwrite', now() - %s)",
            (write_id, age),
        )
    log = "public.lakebase_spark_commits"

    def age(write_id: str, by) -> None:
        db.execute(f"UPDATE {log} SET committed_at = committed_at - %s WHERE write_id = %s", (by, write_id))

    age("old-finished", RETENTION * 2)
    age("recent-finished", MARKER_GRACE * 2)
    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
        pruned = CommitLog(TableName("public", "lakebase_spark_commits")).prune(conn, force=True)
    assert pruned is not None
    left = dict(
        db.execute(f"SELECT write_id, array_agg(part ORDER BY part) FROM {log} GROUP BY write_id").fetchall()
    )
    assert "old-finished" not in left  # forgotten: the id may run again
    assert left["recent-finished"] == [-1]  # remembered; its partition markers went after the grace
    assert "old-abandoned" not in left
    assert left["recent-abandoned"] == [-2]  # can still be resumed
    old_stage = stage_name(TableName("public", "w_retention"), "old-abandoned")
    recent_stage = stage_name(TableName("public", "w_retention"), "recent-abandoned")
    assert db.execute("SELECT to_regclass(%s)", (old_stage.quoted(),)).fetchone() == (None,)
    assert db.execute("SELECT to_regclass(%s)", (recent_stage.quoted(),)).fetchone() != (None,)
    # And it runs by itself: a write prunes when the last pruning is PRUNE_EVERY old.
    age("recent-finished", RETENTION * 2)
    db.execute(f"UPDATE {log} SET committed_at = now() - interval '1 day' WHERE part = -3")
    target(df, "public.w_retention", write_id="prunes-on-its-own")
    left = {r[0] for r in db.execute(f"SELECT DISTINCT write_id FROM {log}").fetchall()}
    assert "recent-finished" not in left
    assert "prunes-on-its-own" in left
    db.execute(f'DROP TABLE IF EXISTS {recent_stage.quoted()}, {recent_stage.quoted()[:-1]}_commits"')


def test_a_failed_final_step_keeps_the_stage_and_its_rerun_applies_it(spark, target, db) -> None:
    """README: a staged write whose final transaction fails keeps its stage; fix the cause, rerun."""
    db.execute("DROP TABLE IF EXISTS public.w_final")
    db.execute("CREATE TABLE public.w_final (id bigint PRIMARY KEY)")
    db.execute("INSERT INTO public.w_final VALUES (5)")  # collides with one incoming key
    df = spark.range(0, 1000, numPartitions=4).selectExpr("id + 100 AS id").union(spark.range(5, 6))
    with pytest.raises(WriteError, match="failed in its final transaction, which was rolled back") as failed:
        target(df, "public.w_final", atomic=True, write_id="final-1")
    assert "rerun with write_id='final-1' to retry the final step" in str(failed.value)
    assert counts(db, "public.w_final") == (1, 1)  # unchanged
    db.execute("DELETE FROM public.w_final WHERE id = 5")  # the cause, fixed
    done = target(df, "public.w_final", atomic=True, write_id="final-1")
    assert (done.rows, done.skipped) == (1001, False)
    assert counts(db, "public.w_final") == (1001, 1001)
