"""The Lakebase SQL catalog (``lakebase_spark.catalog``) on the shared session against the emulator.

The DDL, type and pushdown cases follow Spark's own JDBC v2 catalog suites (``V2JDBCTest``,
``PostgresIntegrationSuite``, ``PostgresNamespaceSuite``), run through our catalog; then what the
catalog adds: COPY writes (INSERT, INSERT OVERWRITE, CTAS) exactly once, reads by the COPY reader in
balanced partitions with one snapshot per query, every relation kind listed, DELETE pushed, UPDATE and
MERGE refused with the call that does them, and no secret in SET, conf or plans.
"""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from pyspark.sql.functions import spark_partition_id

import lakebase_spark
from lakebase_spark import InvalidArgumentError

from ..conftest import DATABASE, ENDPOINT
from ..frames import assert_same_rows

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]

LB = "lbtest"


@pytest.fixture(scope="module")
def lb(spark, broker_service) -> str:
    return lakebase_spark.catalog(spark, LB, ENDPOINT, database=DATABASE, broker=broker_service)


@pytest.fixture
def db(admin, emulator):
    """The admin connection acting as the principal (tables belong to the role the catalog logs in as)."""
    admin.execute(f'SET ROLE "{emulator.user_name}"')
    return admin


def sql(spark, statement: str) -> list:
    return spark.sql(statement).collect()


def plan(spark, query: str) -> str:
    return spark.sql(query)._jdf.queryExecution().executedPlan().toString()


def error_of(spark, statement: str) -> str:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - Spark wraps the JVM's error in its own types
        sql(spark, statement)
    return str(caught.value)


# -- Spark's JDBC v2 catalog suites, through our catalog ------------------------------------------------


def test_table_ddl_as_spark_jdbc_v2_suite(spark, lb, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.ddl_t, public.ddl_t2")
    sql(spark, f"CREATE TABLE {lb}.public.ddl_t (id INT NOT NULL, name STRING)")
    assert [r.tableName for r in sql(spark, f"SHOW TABLES IN {lb}.public LIKE 'ddl_t'")] == ["ddl_t"]
    # V2JDBCTest "SPARK-33034: ALTER TABLE ... add new columns"
    sql(spark, f"ALTER TABLE {lb}.public.ddl_t ADD COLUMNS (c3 DOUBLE, c4 DATE)")
    # "... update column type"
    sql(spark, f"ALTER TABLE {lb}.public.ddl_t ALTER COLUMN id TYPE BIGINT")
    # "... rename column"
    sql(spark, f"ALTER TABLE {lb}.public.ddl_t RENAME COLUMN name TO label")
    # "... update column nullability"
    sql(spark, f"ALTER TABLE {lb}.public.ddl_t ALTER COLUMN id DROP NOT NULL")
    # "... drop column"
    sql(spark, f"ALTER TABLE {lb}.public.ddl_t DROP COLUMN c4")
    described = {r.col_name: r.data_type for r in sql(spark, f"DESCRIBE TABLE {lb}.public.ddl_t")}
    assert described == {"id": "bigint", "label": "string", "c3": "double"}
    columns = db.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name = 'ddl_t' ORDER BY ordinal_position"
    ).fetchall()
    assert columns == [("id", "bigint", "YES"), ("label", "text", "YES"), ("c3", "double precision", "YES")]
    # "... rename table"
    sql(spark, f"ALTER TABLE {lb}.public.ddl_t RENAME TO public.ddl_t2")
    assert not spark.catalog.tableExists(f"{lb}.public.ddl_t")
    assert spark.catalog.tableExists(f"{lb}.public.ddl_t2")
    sql(spark, f"DROP TABLE {lb}.public.ddl_t2")
    assert db.execute("SELECT to_regclass('public.ddl_t2')").fetchone()[0] is None
    # Creating an existing table fails as Spark's suites expect.
    sql(spark, f"CREATE TABLE {lb}.public.ddl_t (id INT)")
    assert "already exists" in error_of(spark, f"CREATE TABLE {lb}.public.ddl_t (id INT)").lower()
    sql(spark, f"DROP TABLE {lb}.public.ddl_t")


def test_namespaces_as_spark_postgres_namespace_suite(spark, lb, admin, emulator) -> None:
    admin.execute(f'GRANT CREATE ON DATABASE "{DATABASE}" TO "{emulator.user_name}"')
    admin.execute("DROP SCHEMA IF EXISTS ns_a, ns_b CASCADE")
    sql(spark, f"CREATE NAMESPACE {lb}.ns_a COMMENT 'the first'")
    sql(spark, f"CREATE NAMESPACE {lb}.ns_b")
    names = {r[0] for r in sql(spark, f"SHOW NAMESPACES IN {lb}")}
    assert {"public", "ns_a", "ns_b"} <= names
    comment = admin.execute("SELECT obj_description('ns_a'::regnamespace, 'pg_namespace')").fetchone()[0]
    assert comment == "the first"
    sql(spark, f"CREATE TABLE {lb}.ns_b.t (id INT)")
    assert [r.tableName for r in sql(spark, f"SHOW TABLES IN {lb}.ns_b")] == ["t"]
    assert "ns_b" in error_of(spark, f"DROP NAMESPACE {lb}.ns_b")  # not empty: refused
    sql(spark, f"DROP NAMESPACE {lb}.ns_b CASCADE")
    sql(spark, f"DROP NAMESPACE {lb}.ns_a")
    names = {r[0] for r in sql(spark, f"SHOW NAMESPACES IN {lb}")}
    assert not names & {"ns_a", "ns_b"}
    assert "ns_gone" in error_of(spark, f"SHOW TABLES IN {lb}.ns_gone")


TYPES = """
    SELECT CAST(id AS INT) AS i, id AS l, CAST(id AS SMALLINT) AS s, id / 3.0D AS d,
           CAST(id / 7 AS FLOAT) AS f,
           CAST(id / 4 AS DECIMAL(12, 2)) AS dec, concat('v', id) AS str, id % 2 = 0 AS b,
           date_add(DATE'2024-01-01', CAST(id AS INT)) AS dt,
           timestamp_seconds(1700000000 + id * 3601) AS ts, CAST(concat('x', id) AS BINARY) AS bin
    FROM range(0, 3000)
"""


def test_ctas_creates_spark_postgres_types_and_round_trips(spark, lb, opts, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.cat_types, public.cat_types_jdbc")
    source = spark.sql(TYPES)
    sql(spark, f"CREATE TABLE {lb}.public.cat_types AS {TYPES}")
    # The same columns as Spark's JDBC writer creates (PostgresIntegrationSuite's type mapping).
    source.limit(0).write.format("jdbc").options(**opts).option("dbtable", "public.cat_types_jdbc").save()
    types = (
        "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position"
    )
    assert db.execute(types, ("cat_types",)).fetchall() == db.execute(types, ("cat_types_jdbc",)).fetchall()
    assert_same_rows(spark.table(f"{lb}.public.cat_types"), source)
    # Written by COPY under the query's id, recorded done in the commit log.
    done = db.execute(
        'SELECT count(*) FROM public.lakebase_spark_commits WHERE target = \'"public"."cat_types"\' '
        "AND part = -1 AND write_id LIKE 'spark-query-%'"
    ).fetchone()[0]
    assert done == 1


def test_pushdown_kept_as_spark_jdbc_v2_suite(spark, lb, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.push_t")
    db.execute(
        "CREATE TABLE public.push_t AS "
        "SELECT g AS id, g % 10 AS k, md5(g::text) AS v FROM generate_series(1, 5000) g"
    )
    t = f"{lb}.public.push_t"
    # Filters: the COPY reader runs them in Postgres.
    query = f"SELECT id, v FROM {t} WHERE k = 3 AND id > 100"
    assert 'pushed WHERE ("k" IS NOT NULL) AND ("id" IS NOT NULL) AND ("k" = 3) AND ("id" > 100)' in plan(
        spark, query
    )
    assert sorted(r.id for r in sql(spark, query)) == [i for i in range(101, 5001) if i % 10 == 3]
    # Aggregates, LIMIT, top-N and TABLESAMPLE: Spark's JDBC scan, as without the catalog.
    query = f"SELECT k, count(*) AS n, max(id) AS m FROM {t} GROUP BY k"
    assert "PushedAggregates: [COUNT(*), MAX(id)]" in plan(spark, query)
    assert sorted(tuple(r) for r in sql(spark, query)) == [(k, 500, 4990 + (k or 10)) for k in range(10)]
    query = f"SELECT id FROM {t} LIMIT 7"
    assert "PushedLimit: LIMIT 7" in plan(spark, query)
    assert len(sql(spark, query)) == 7
    query = f"SELECT id FROM {t} ORDER BY id DESC LIMIT 3"
    assert "PushedTopN: ORDER BY [id DESC NULLS LAST] LIMIT 3" in plan(spark, query)
    assert [r.id for r in sql(spark, query)] == [5000, 4999, 4998]
    # TABLESAMPLE: sampled by Spark (see CatalogScanBuilder), rightly.
    query = f"SELECT count(*) FROM {t} TABLESAMPLE (50 PERCENT) REPEATABLE (12345)"
    assert 1500 < sql(spark, query)[0][0] < 3500


def test_rows_read_by_the_copy_reader_in_balanced_partitions(spark, lb, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.parts_t")
    db.execute(
        "CREATE TABLE public.parts_t AS "
        "SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 40000) g"
    )
    db.execute("ANALYZE public.parts_t")
    paged = spark.read.option("partitions", "4").table(f"{lb}.public.parts_t")
    assert "lakebase COPY" in paged._jdf.queryExecution().executedPlan().toString()
    assert paged.rdd.getNumPartitions() == 4
    keyed = spark.read.options(key="id", partitions="3").table(f"{lb}.public.parts_t")
    assert keyed.rdd.getNumPartitions() == 3
    sizes = [r[1] for r in keyed.groupBy(spark_partition_id()).count().collect()]
    assert sum(sizes) == 40000
    assert min(sizes) > 10000  # balanced, not one big partition
    jdbc = spark.read.option("reader", "jdbc").table(f"{lb}.public.parts_t")
    assert "lakebase COPY" not in jdbc._jdf.queryExecution().executedPlan().toString()
    assert jdbc.count() == paged.count() == 40000
    with pytest.raises(Exception, match="reader must be copy or jdbc"):
        spark.read.option("reader", "x").table(f"{lb}.public.parts_t").collect()


def test_one_snapshot_per_query_under_concurrent_writes(spark, lb, db, emulator) -> None:
    """Two tables written together (one transaction each time) read as one moment, however the scans run."""
    db.execute("DROP TABLE IF EXISTS public.snap_a, public.snap_b")
    db.execute("CREATE TABLE public.snap_a (id bigint)")
    db.execute("CREATE TABLE public.snap_b (id bigint)")
    stop = threading.Event()
    batches = [0]

    def writer() -> None:
        with psycopg.connect(emulator.admin_conninfo(DATABASE)) as conn:
            while not stop.is_set():
                with conn.transaction():
                    conn.execute("INSERT INTO public.snap_a SELECT g FROM generate_series(1, 300) g")
                    conn.execute("INSERT INTO public.snap_b SELECT g FROM generate_series(1, 300) g")
                batches[0] += 1

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    rows = (  # scans of rows: the COPY reader, its partitions and tables on one snapshot
        f"SELECT sum(sign) FROM (SELECT id * 0 + 1 AS sign FROM {lb}.public.snap_a "
        f"UNION ALL SELECT id * 0 - 1 FROM {lb}.public.snap_b)"
    )
    counts = f"SELECT (SELECT count(*) FROM {lb}.public.snap_a) - (SELECT count(*) FROM {lb}.public.snap_b)"
    try:
        time.sleep(0.5)
        differences = [sql(spark, query)[0][0] for _ in range(6) for query in (rows, counts)]
    finally:
        stop.set()
        thread.join()
    assert batches[0] > 10  # the writer really wrote while the queries ran
    assert differences == [0] * 12
    # Each query released its snapshot when it ended: no exporting transaction is left open.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        held = db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_export_snapshot%' "
            "AND state = 'idle in transaction'"
        ).fetchone()[0]
        if held == 0:
            break
        time.sleep(0.2)
    assert held == 0


# -- relations -------------------------------------------------------------------------------------------


def test_show_tables_lists_every_relation_kind(spark, lb, db, emulator) -> None:
    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as su:  # a superuser's part
        su.execute("CREATE EXTENSION IF NOT EXISTS file_fdw")
        su.execute("CREATE SERVER IF NOT EXISTS files FOREIGN DATA WRAPPER file_fdw")
        su.execute("CREATE SCHEMA IF NOT EXISTS kinds")
        su.execute(f'GRANT ALL ON SCHEMA kinds TO "{emulator.user_name}"')
        su.execute("DROP FOREIGN TABLE IF EXISTS kinds.f_table")
        su.execute("CREATE FOREIGN TABLE kinds.f_table (a int) SERVER files OPTIONS (filename '/dev/null')")
        su.execute(f'GRANT SELECT ON kinds.f_table TO "{emulator.user_name}"')
    db.execute("DROP TABLE IF EXISTS kinds.r_table, kinds.p_table CASCADE")
    db.execute("DROP MATERIALIZED VIEW IF EXISTS kinds.m_view")
    db.execute("CREATE TABLE kinds.r_table AS SELECT g AS id FROM generate_series(1, 10) g")
    db.execute("CREATE VIEW kinds.v_view AS SELECT id FROM kinds.r_table WHERE id <= 3")
    db.execute("CREATE MATERIALIZED VIEW kinds.m_view AS SELECT id FROM kinds.r_table WHERE id <= 4")
    db.execute("CREATE TABLE kinds.p_table (id int) PARTITION BY RANGE (id)")
    db.execute("CREATE TABLE kinds.p_low PARTITION OF kinds.p_table FOR VALUES FROM (0) TO (100)")
    db.execute("INSERT INTO kinds.p_table SELECT g FROM generate_series(1, 5) g")
    listed = sorted(r.tableName for r in sql(spark, f"SHOW TABLES IN {lb}.kinds"))
    assert listed == ["f_table", "m_view", "p_low", "p_table", "r_table", "v_view"]
    counts = {name: sql(spark, f"SELECT count(*) FROM {lb}.kinds.{name}")[0][0] for name in listed}
    assert counts == {"f_table": 0, "m_view": 4, "p_low": 5, "p_table": 5, "r_table": 10, "v_view": 3}
    rows = sorted(r.id for r in spark.read.option("partitions", "2").table(f"{lb}.kinds.v_view").collect())
    assert rows == [1, 2, 3]
    assert [r.col_name for r in sql(spark, f"DESCRIBE TABLE {lb}.kinds.v_view")] == ["id"]
    # Spark's own JDBC catalog lists tables only: the difference this catalog makes.
    assert not sql(spark, f"SHOW TABLES IN {lb}.kinds LIKE 'nothing*'")


# -- writes ----------------------------------------------------------------------------------------------


def test_insert_into_appends_by_copy_exactly_once(spark, lb, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.ins_t")
    db.execute("CREATE TABLE public.ins_t (id bigint PRIMARY KEY, v text)")
    sql(spark, f"INSERT INTO {lb}.public.ins_t VALUES (-1, 'a'), (-2, 'b')")
    sql(spark, f"INSERT INTO {lb}.public.ins_t SELECT id, concat('v', id) FROM range(0, 10000, 1, 4)")
    spark.range(10000, 12000).selectExpr("id", "'w' AS v").writeTo(f"{lb}.public.ins_t").append()
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM public.ins_t").fetchone() == (12002, 12002)
    # Three writes, each finished (a DONE row) with every partition's marker, under its query's id.
    writes = db.execute(
        "SELECT write_id, sum(rows) FILTER (WHERE part >= 0) FROM public.lakebase_spark_commits "
        "WHERE target = %s GROUP BY write_id HAVING bool_or(part = -1) ORDER BY 2",
        ('"public"."ins_t"',),
    ).fetchall()
    assert [rows for _, rows in writes] == [2, 2000, 10000]
    assert all(write_id.startswith("spark-query-") for write_id, _ in writes)
    # A row Postgres refuses fails the statement; the partitions committed before it are listed in the log.
    error = error_of(spark, f"INSERT INTO {lb}.public.ins_t VALUES (1, 'duplicate key')")
    assert "duplicate key" in error or "23505" in error
    assert db.execute("SELECT count(*) FROM public.ins_t").fetchone()[0] == 12002


def test_insert_overwrite_is_atomic_under_a_polling_reader(spark, lb, db, emulator) -> None:
    db.execute("DROP TABLE IF EXISTS public.ow_t")
    db.execute(
        "CREATE TABLE public.ow_t AS SELECT g::bigint AS id, 'old' AS v FROM generate_series(1, 50000) g"
    )
    db.execute("CREATE INDEX ow_t_v ON public.ow_t (v)")
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
            while not stop.is_set():
                seen.add(
                    conn.execute(
                        "SELECT count(*), count(*) FILTER (WHERE v = 'new') FROM public.ow_t"
                    ).fetchone()
                )

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        time.sleep(0.2)
        sql(spark, f"INSERT OVERWRITE {lb}.public.ow_t SELECT id, 'new' FROM range(0, 30000, 1, 4)")
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    assert seen <= {(50000, 0), (30000, 30000)}  # the old rows or the new ones, never a mix or nothing
    assert seen == {(50000, 0), (30000, 30000)}
    # The table itself stayed (its index too); the stage is gone.
    assert db.execute("SELECT count(*) FROM pg_indexes WHERE indexname = 'ow_t_v'").fetchone()[0] == 1
    assert (
        db.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'lakebase_spark_stage%'").fetchone()[0]
        == 0
    )
    sql(spark, f"TRUNCATE TABLE {lb}.public.ow_t")
    assert db.execute("SELECT count(*) FROM public.ow_t").fetchone()[0] == 0


def test_delete_is_one_postgres_statement(spark, lb, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.del_t")
    db.execute(
        "CREATE TABLE public.del_t AS "
        "SELECT g AS id, g % 3 AS k, 'x' || g AS v FROM generate_series(1, 1000) g"
    )
    sql(spark, f"DELETE FROM {lb}.public.del_t WHERE k = 0 AND id > 500")
    assert db.execute("SELECT count(*) FROM public.del_t").fetchone()[0] == 1000 - 167
    sql(spark, f"DELETE FROM {lb}.public.del_t WHERE v IN ('x1', 'x2') OR id IS NULL")
    assert db.execute("SELECT count(*) FROM public.del_t").fetchone()[0] == 1000 - 169
    error = error_of(spark, f"DELETE FROM {lb}.public.del_t WHERE id IN (SELECT id FROM range(10))")
    assert "condition Postgres cannot evaluate" in error
    assert db.execute("SELECT count(*) FROM public.del_t").fetchone()[0] == 1000 - 169  # nothing deleted


def test_update_and_merge_name_the_upsert_call(spark, lb, db) -> None:
    db.execute("DROP TABLE IF EXISTS public.upd_t")
    db.execute("CREATE TABLE public.upd_t (id int PRIMARY KEY, v text)")
    db.execute("INSERT INTO public.upd_t VALUES (1, 'a')")
    for statement in (
        f"UPDATE {lb}.public.upd_t SET v = 'b' WHERE id = 1",
        f"MERGE INTO {lb}.public.upd_t t USING (SELECT 1 AS id, 'c' AS v) s ON t.id = s.id "
        "WHEN MATCHED THEN UPDATE SET v = s.v",
    ):
        assert 'lakebase_spark.write(df, table, mode="upsert", key=...)' in error_of(spark, statement)
    assert db.execute("SELECT v FROM public.upd_t").fetchall() == [("a",)]


# -- the secret and the registration ------------------------------------------------------------------------


def test_no_secret_in_set_conf_or_plans(spark, lb, broker_service, db) -> None:
    secret = broker_service.secret.reveal()
    db.execute("DROP TABLE IF EXISTS public.sec_t")
    db.execute("CREATE TABLE public.sec_t (id bigint, v text)")
    shown = [
        *(str(r) for r in sql(spark, "SET")),
        *(str(r) for r in sql(spark, "SET -v")),
        str(spark.sparkContext.getConf().getAll()),
        str(getattr(spark.conf, "getAll", "")),  # 4.x: the session's conf as a property
        *(str(r) for r in sql(spark, f"DESCRIBE TABLE EXTENDED {lb}.public.sec_t")),
        *(str(r) for r in sql(spark, f"EXPLAIN EXTENDED SELECT * FROM {lb}.public.sec_t WHERE id > 1")),
        *(str(r) for r in sql(spark, f"EXPLAIN EXTENDED INSERT INTO {lb}.public.sec_t SELECT 1, 'a'")),
        plan(spark, f"SELECT count(*) FROM {lb}.public.sec_t"),
    ]
    assert any(f"spark.sql.catalog.{LB}" in line for line in shown)  # the catalog's confs were listed
    assert not [line for line in shown if secret in line]
    assert spark.conf.get(f"spark.sql.catalog.{LB}.lakebase.broker.secret", None) is None
    assert spark.conf.get(f"spark.sql.catalog.{LB}.lakebase.broker.secret.file").startswith(
        "lakebase-secret-"
    )


def test_registration_checks_names_and_endpoints(spark, lb, broker_service) -> None:
    for name in ("spark_catalog", "1lb", "l b", ""):
        with pytest.raises(InvalidArgumentError):
            lakebase_spark.catalog(spark, name, ENDPOINT, database=DATABASE, broker=broker_service)
    # The same catalog again: fine. The name for another database: refused, naming the fix.
    assert lakebase_spark.catalog(spark, LB, ENDPOINT, database=DATABASE, broker=broker_service) == LB
    with pytest.raises(InvalidArgumentError, match="already registered"):
        lakebase_spark.catalog(spark, LB, ENDPOINT, database="databricks_postgres", broker=broker_service)


def test_join_pushdown_when_spark_is_asked_to(spark, lb, db) -> None:
    """Spark 4's join pushdown (off by default) joins two tables of one catalog in Postgres, as without it."""
    db.execute("DROP TABLE IF EXISTS public.j_a, public.j_b")
    db.execute("CREATE TABLE public.j_a AS SELECT g AS id, g % 5 AS k FROM generate_series(1, 100) g")
    db.execute("CREATE TABLE public.j_b AS SELECT g AS k, 'name' || g AS name FROM generate_series(0, 4) g")
    query = f"SELECT a.id, b.name FROM {lb}.public.j_a a JOIN {lb}.public.j_b b ON a.k = b.k WHERE a.id < 8"
    expected = sorted((i, f"name{i % 5}") for i in range(1, 8))
    spark.conf.set("spark.sql.optimizer.datasourceV2JoinPushdown", "true")
    try:
        joined = plan(spark, query)
        assert sorted(tuple(r) for r in sql(spark, query)) == expected
    finally:
        spark.conf.unset("spark.sql.optimizer.datasourceV2JoinPushdown")
    if int(spark.version.split(".")[0]) >= 4 and int(spark.version.split(".")[1]) >= 1:
        assert "PushedJoins" in joined
        assert "Join" not in joined.split("Scan")[0]  # no join of Spark's above the one scan
        assert "lakebase COPY" not in joined
    assert "lakebase COPY" in plan(spark, query)  # without the switch: two COPY scans, joined by Spark
    assert sorted(tuple(r) for r in sql(spark, query)) == expected


def test_a_failed_insert_keeps_what_it_says(spark, lb, db) -> None:
    """A statement failing in one partition: INSERT INTO keeps the partitions it committed (as Spark's JDBC
    writer does), under its query's id in the commit log; with the write option atomic, nothing."""
    db.execute("DROP TABLE IF EXISTS public.fail_t")
    db.execute("CREATE TABLE public.fail_t (id bigint PRIMARY KEY, v text)")
    db.execute("INSERT INTO public.fail_t VALUES (19999, 'taken')")  # the last partition's last id
    rows = spark.range(0, 20000, 1, 4).selectExpr("id", "'new' AS v")
    with pytest.raises(Exception, match="duplicate key"):
        rows.writeTo(f"{lb}.public.fail_t").option("atomic", "true").append()
    assert db.execute("SELECT count(*) FROM public.fail_t").fetchone()[0] == 1  # nothing of it
    assert (
        db.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'lakebase_spark_stage%'").fetchone()[0]
        == 0
    )
    with pytest.raises(Exception, match="duplicate key"):
        rows.writeTo(f"{lb}.public.fail_t").append()
    committed = db.execute(
        "SELECT count(*), sum(rows) FROM public.lakebase_spark_commits WHERE target = %s AND part >= 0 "
        "AND write_id LIKE 'spark-query-%%'",
        ('"public"."fail_t"',),
    ).fetchone()
    assert committed == (3, 15000)  # the other three partitions, listed
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM public.fail_t").fetchone() == (15001, 15001)


def test_catalogs_side_by_side(spark, lb, broker_service, db, emulator) -> None:
    """Two databases as two catalogs in one statement: read from one (its snapshot), write the other."""
    other = lakebase_spark.catalog(
        spark, "lbother", ENDPOINT, database="databricks_postgres", broker=broker_service
    )
    with psycopg.connect(emulator.admin_conninfo("databricks_postgres"), autocommit=True) as su:
        su.execute(f'GRANT CREATE ON SCHEMA public TO "{emulator.user_name}"')
        su.execute("DROP TABLE IF EXISTS public.copied")
    db.execute("DROP TABLE IF EXISTS public.source_t")
    db.execute(
        "CREATE TABLE public.source_t AS SELECT g AS id, 'r' || g AS v FROM generate_series(1, 3000) g"
    )
    copy = f"SELECT * FROM {lb}.public.source_t WHERE"
    sql(spark, f"CREATE TABLE {other}.public.copied AS {copy} id > 1000")
    sql(spark, f"INSERT INTO {other}.public.copied {copy} id <= 10")
    assert sql(spark, f"SELECT count(*), min(id), max(id) FROM {other}.public.copied")[0][:] == (
        2010,
        1,
        3000,
    )
    assert sql(spark, f"SELECT count(*) FROM {lb}.public.source_t")[0][0] == 3000
    assert not spark.catalog.tableExists(f"{lb}.public.copied")


def test_indexes_as_spark_jdbc_v2_suite(spark, lb, db) -> None:
    """V2JDBCTest "SPARK-36895: Test INDEX Using SQL": CREATE INDEX, SHOW INDEXES, DROP INDEX."""
    db.execute("DROP TABLE IF EXISTS public.idx_t")
    db.execute("CREATE TABLE public.idx_t (col1 int, col2 int, col3 int)")
    t = f"{lb}.public.idx_t"
    sql(spark, f"CREATE INDEX i1 ON {t} (col1)")
    sql(spark, f"CREATE INDEX i2 ON {t} USING BTREE (col2, col3)")
    names = db.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'idx_t' ORDER BY 1").fetchall()
    assert names == [("i1",), ("i2",)]
    assert "i1" in error_of(spark, f"CREATE INDEX i1 ON {t} (col1)")  # already exists
    sql(spark, f"DROP INDEX i1 ON {t}")
    sql(spark, f"DROP INDEX i2 ON {t}")
    assert db.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'idx_t'").fetchone()[0] == 0
