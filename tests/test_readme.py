"""The README's sharding example runs as written (against the emulator), so the docs cannot rot."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pyspark
import pytest

import lakebase_spark
from lakebase_spark import Snapshot

from .conftest import ENDPOINT

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

README = Path(__file__).parent.parent / "README.md"


def example(marker: str) -> str:
    text = README.read_text()
    found = re.search(rf"<!-- {marker}: .*? -->\n```python\n(.*?)```", text, re.S)
    assert found, f"README has no {marker} block"
    return found.group(1)


def test_sharding_example(spark, emulator, monkeypatch) -> None:
    for name in ("shard_eu", "shard_us", "shard_apac"):
        emulator.create_database(name)
    # The example relies on the default WorkspaceClient(): configure it the way users do, by environment.
    monkeypatch.setenv("DATABRICKS_HOST", emulator.host)
    monkeypatch.setenv("DATABRICKS_TOKEN", emulator.pat)
    monkeypatch.setattr(lakebase_spark.serving.service, "_default_workspace", None)
    scope = {"spark": spark, "ENDPOINT": ENDPOINT}
    try:
        exec(compile(example("sharding-example"), "README.md", "exec"), scope)
    finally:
        lakebase_spark.stop_shared_broker_services()
    assert scope["everything"].count() == 7_999
    shards = {r.shard: r["count"] for r in scope["everything"].groupBy("shard").count().collect()}
    assert shards == {"shard_eu": 999, "shard_us": 4_000, "shard_apac": 3_000}
    assert sorted(r.id for r in scope["some"].collect()) == list(range(1_500, 2_500))
    assert scope["owner"] == "shard_us"


def readme_scope(spark, emulator, monkeypatch) -> dict:
    emulator.create_database("shop")
    monkeypatch.setenv("DATABRICKS_HOST", emulator.host)
    monkeypatch.setenv("DATABRICKS_TOKEN", emulator.pat)
    monkeypatch.setattr(lakebase_spark.serving.service, "_default_workspace", None)
    return {"spark": spark, "ENDPOINT": ENDPOINT}


def shop(emulator):
    import psycopg

    return psycopg.connect(emulator.admin_conninfo("shop"), autocommit=True)


def grant_orders(conn, emulator) -> None:
    """The emulator's user reads public.orders and creates tables in shop."""
    conn.execute(f'GRANT SELECT ON public.orders TO "{emulator.user_name}"')
    conn.execute(f'GRANT CREATE ON SCHEMA public TO "{emulator.user_name}"')


def test_writes_example(spark, emulator, monkeypatch) -> None:
    emulator.create_database("shop")
    with shop(emulator) as conn:
        conn.execute("DROP TABLE IF EXISTS public.orders, public.orders_daily, public.lakebase_spark_commits")
    scope = readme_scope(spark, emulator, monkeypatch)
    try:
        exec(compile(example("writes-example"), "README.md", "exec"), scope)
    finally:
        lakebase_spark.stop_shared_broker_services()
    assert scope["result"].rows == 1000
    assert scope["daily"].rows == 100_000
    with shop(emulator) as conn:
        assert (
            conn.execute("SELECT count(*), count(DISTINCT id) FROM public.orders").fetchone()
            == (100_000,) * 2
        )
        assert conn.execute("SELECT amount FROM public.orders WHERE id = 10").fetchone()[0] == 30  # upserted
        assert conn.execute("SELECT count(*) FROM public.orders_daily").fetchone() == (100_000,)


def test_streaming_example(spark, emulator, monkeypatch, tmp_path) -> None:
    import time

    emulator.create_database("shop")
    with shop(emulator) as conn:
        conn.execute("DROP TABLE IF EXISTS public.events")
    scope = readme_scope(spark, emulator, monkeypatch)
    scope["CHECKPOINT"] = str(tmp_path / "checkpoint")
    code = compile(example("streaming-example"), "README.md", "exec")
    try:
        for _ in range(2):  # run, stop, and start again from the same checkpoint
            exec(code, scope)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(scope["query"].recentProgress) < 3:
                time.sleep(0.5)
            scope["query"].stop()
            assert scope["query"].exception() is None
    finally:
        lakebase_spark.stop_shared_broker_services()
    with shop(emulator) as conn:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT value) FROM public.events").fetchone()
    assert rows == distinct > 0


def test_emulator_example(spark) -> None:
    """Runs as written: its own emulator, and the test session (getOrCreate returns it)."""
    scope: dict = {}
    try:
        exec(compile(example("emulator-example"), "README.md", "exec"), scope)
    finally:
        lakebase_spark.stop_shared_broker_services()
    assert scope["total"] == 100


@pytest.mark.skipif(int(pyspark.__version__.split(".")[0]) < 4, reason="format('lakebase') is Spark 4+")
def test_jar_free_example(spark, emulator, monkeypatch) -> None:
    emulator.create_endpoint("projects/shop/branches/main/endpoints/primary")
    emulator.create_database("shop")
    with shop(emulator) as conn:
        conn.execute("DROP TABLE IF EXISTS public.orders, public.big_orders")
        conn.execute("CREATE TABLE public.orders (id bigint PRIMARY KEY, amount numeric(12, 2))")
        conn.execute("INSERT INTO public.orders SELECT g, g * 0.5 FROM generate_series(1, 1000) g")
        conn.execute("CREATE TABLE public.big_orders (id bigint PRIMARY KEY, amount numeric(12, 2))")
        conn.execute("INSERT INTO public.big_orders VALUES (500, 1), (1, 1)")  # one updated, one kept
        conn.execute(f'GRANT ALL ON public.big_orders TO "{emulator.user_name}"')
        grant_orders(conn, emulator)
    scope = readme_scope(spark, emulator, monkeypatch)
    try:
        exec(compile(example("jarfree-example"), "README.md", "exec"), scope)
    finally:
        lakebase_spark.stop_shared_broker_services()
    assert scope["orders"].count() == 1000
    with shop(emulator) as conn:
        rows = conn.execute(
            "SELECT count(*), min(id), max(id), sum(amount) FROM public.big_orders"
        ).fetchone()
    # ids 201..1000 have amount > 100 (500 updated from 1 to 250); id 1 kept as it was
    assert rows == (801, 1, 1000, sum(range(201, 1001)) * Decimal("0.5") + 1)


def test_quickstart_and_notebook_examples(spark, emulator, monkeypatch) -> None:
    emulator.create_endpoint("projects/shop/branches/main/endpoints/primary")
    emulator.create_database("shop")
    with shop(emulator) as conn:
        conn.execute("DROP TABLE IF EXISTS public.orders, public.order_counts")
        conn.execute("CREATE TABLE public.orders (id bigint, customer text)")
        conn.execute("INSERT INTO public.orders SELECT g, 'c' || (g % 3) FROM generate_series(1, 30) g")
        grant_orders(conn, emulator)
    scope = readme_scope(spark, emulator, monkeypatch)
    try:
        exec(compile(example("quickstart-example"), "README.md", "exec"), scope)
        exec(compile(example("notebook-example"), "README.md", "exec"), scope)
    finally:
        lakebase_spark.stop_shared_broker_services()
    assert scope["df"].count() == 30
    with shop(emulator) as conn:
        counts = conn.execute("SELECT customer, count FROM public.order_counts ORDER BY 1").fetchall()
    assert counts == [("c0", 10), ("c1", 10), ("c2", 10)]


def test_the_plugin_example_is_the_file_the_suite_runs() -> None:
    block = re.search(r"<!-- plugin-example: .*? -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert block, "README has no plugin-example block"
    assert block.group(1) in (README.parent / "examples" / "test_customer_totals.py").read_text()


def test_reading_example(spark, emulator, monkeypatch) -> None:
    emulator.create_database("shop")
    with shop(emulator) as conn:
        conn.execute("DROP TABLE IF EXISTS public.customers, public.events, public.invoices")
        conn.execute(
            "CREATE TABLE public.customers AS SELECT i AS customer, 'c' || i || '@example.com' AS email "
            "FROM generate_series(1, 300) i"
        )
        conn.execute("CREATE TABLE public.events AS SELECT i % 17 AS kind FROM generate_series(1, 5000) i")
        conn.execute(
            "CREATE TABLE public.invoices AS SELECT i AS id, i % 300 + 1 AS customer "
            "FROM generate_series(1, 3000) i"
        )
        for table in ("customers", "events", "invoices"):
            conn.execute(f'GRANT SELECT ON public.{table} TO "{emulator.user_name}"')
    scope = readme_scope(spark, emulator, monkeypatch)
    try:
        exec(compile(example("reading-example"), "README.md", "exec"), scope)
        assert scope["customers"].count() == 300
        assert scope["customers"].rdd.getNumPartitions() == 6
        assert scope["events"].count() == 5000
        assert scope["by_pair"].rdd.getNumPartitions() == 4
        assert scope["by_pair"].select("id").distinct().count() == 3000
    finally:
        lakebase_spark.stop_shared_broker_services()
        Snapshot.close_all()  # the two reads' own snapshots, held for an hour otherwise
    assert len(scope["per_customer"]) == 300
    assert {r["count"] for r in scope["per_customer"]} == {10}
    assert scope["snap"].closed


@pytest.mark.skipif(tuple(int(p) for p in pyspark.__version__.split(".")[:2]) < (4, 2), reason="Spark 4.2+")
def test_changes_example(spark, emulator, monkeypatch, tmp_path) -> None:
    """Both streams run as written, twice: after the first run, the table changes; after the second, the
    copy equals the table and the history holds the snapshot and every change."""
    emulator.create_database("shop")
    with shop(emulator) as conn:
        for slot in ("orders_history", "orders_copy"):
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                (slot,),
            )
        conn.execute("DROP TABLE IF EXISTS public.orders, public.orders_copy")
        for table in ("orders", "orders_copy"):
            columns = "id bigint PRIMARY KEY, customer text, amount numeric(12,2)"
            conn.execute(f"CREATE TABLE public.{table} ({columns})")
            conn.execute(f'ALTER TABLE public.{table} OWNER TO "{emulator.user_name}"')
        conn.execute("INSERT INTO public.orders SELECT g, 'c' || (g % 7), g FROM generate_series(1, 1000) g")
    scope = readme_scope(spark, emulator, monkeypatch)
    scope.update(HISTORY=str(tmp_path / "history"), CHECKPOINT=str(tmp_path / "checkpoints"))
    code = compile(example("changes-example"), "README.md", "exec")
    try:
        exec(code, scope)
        for query in (scope["history"], scope["copy"]):
            query.awaitTermination(300)
            assert query.exception() is None
        with shop(emulator) as conn:
            conn.execute("UPDATE public.orders SET amount = amount * 2 WHERE id <= 100")
            conn.execute("DELETE FROM public.orders WHERE id > 900")
            conn.execute("INSERT INTO public.orders SELECT g, 'new', 1 FROM generate_series(2001, 2050) g")
            conn.execute("UPDATE public.orders SET amount = 7 WHERE id = 2001")  # 2001 twice: the last wins
        exec(code, scope)
        for query in (scope["history"], scope["copy"]):
            query.awaitTermination(300)
            assert query.exception() is None
    finally:
        lakebase_spark.stop_shared_broker_services()
    with shop(emulator) as conn:
        table = conn.execute("SELECT id, customer, amount FROM public.orders ORDER BY id").fetchall()
        copy = conn.execute("SELECT id, customer, amount FROM public.orders_copy ORDER BY id").fetchall()
        for slot in ("orders_history", "orders_copy"):
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    assert copy == table
    assert len(table) == 950
    history = spark.read.parquet(scope["HISTORY"]).groupBy("_change_type").count()
    kinds = {r[0]: r[1] for r in history.collect()}
    assert kinds == {"insert": 1000 + 50, "update_preimage": 101, "update_postimage": 101, "delete": 100}


@pytest.mark.skipif(tuple(int(p) for p in pyspark.__version__.split(".")[:2]) < (4, 2), reason="Spark 4.2+")
def test_xmin_example(spark, emulator, monkeypatch, tmp_path) -> None:
    """The slot-free stream as written, twice: after the second run the mirror holds every row of the table
    as it is now, and the deleted rows as they were (a slot-free stream sees no delete)."""
    from lakebase_spark.datasource import register, source_options

    emulator.create_database("shop")
    with shop(emulator) as conn:
        conn.execute("DROP TABLE IF EXISTS public.orders, public.orders_mirror")
        for table in ("orders", "orders_mirror"):
            conn.execute(
                f"CREATE TABLE public.{table} (id bigint PRIMARY KEY, customer text, amount numeric(12,2))"
            )
            conn.execute(f'ALTER TABLE public.{table} OWNER TO "{emulator.user_name}"')
        conn.execute("INSERT INTO public.orders SELECT g, 'c' || (g % 7), g FROM generate_series(1, 1000) g")
    scope = readme_scope(spark, emulator, monkeypatch)
    register(spark)
    scope.update(
        CHECKPOINT=str(tmp_path / "checkpoints"),
        lakebase_spark=lakebase_spark,
        opts=source_options(ENDPOINT, database="shop"),
    )
    code = compile(example("xmin-example"), "README.md", "exec")
    try:
        exec(code, scope)
        scope["mirror"].awaitTermination(300)
        assert scope["mirror"].exception() is None
        with shop(emulator) as conn:
            before = dict(conn.execute("SELECT id, amount FROM public.orders WHERE id > 990").fetchall())
            conn.execute("UPDATE public.orders SET amount = amount * 2 WHERE id <= 100")
            conn.execute("DELETE FROM public.orders WHERE id > 990")
            conn.execute("INSERT INTO public.orders SELECT g, 'new', 1 FROM generate_series(2001, 2050) g")
        exec(code, scope)
        scope["mirror"].awaitTermination(300)
        assert scope["mirror"].exception() is None
    finally:
        lakebase_spark.stop_shared_broker_services()
    with shop(emulator) as conn:
        table = conn.execute("SELECT id, customer, amount FROM public.orders ORDER BY id").fetchall()
        mirror = conn.execute("SELECT id, customer, amount FROM public.orders_mirror ORDER BY id").fetchall()
    assert len(table) == 1040
    assert [r for r in mirror if r[0] <= 990 or r[0] > 2000] == table
    assert {r[0]: r[2] for r in mirror if 990 < r[0] <= 1000} == before  # deletes are not seen


def test_sql_example(spark, emulator, monkeypatch) -> None:
    emulator.create_database("shop")
    with shop(emulator) as conn:
        conn.execute(f'GRANT CREATE ON DATABASE shop TO "{emulator.user_name}"')
        conn.execute("DROP SCHEMA IF EXISTS sales CASCADE")
    scope = readme_scope(spark, emulator, monkeypatch)
    try:
        exec(compile(example("sql-example"), "README.md", "exec"), scope)
        totals = {r.customer: r.total for r in scope["totals"].collect()}
        tables = [r.tableName for r in scope["tables"].collect()]
    finally:
        lakebase_spark.stop_shared_broker_services()
    assert len(totals) == 97
    # totals is read when collected, after the overwrite (even ids) and the delete (the 1.00 rows)
    assert totals[0] == sum(Decimal(i * 3) / 2 for i in range(0, 100000, 97) if i % 2 == 0)
    assert tables == ["lakebase_spark_commits", "orders"]  # with the commit log of the writes
    with shop(emulator) as conn:
        count, distinct, odd, extra = conn.execute(
            "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id % 2 = 1), "
            "count(*) FILTER (WHERE id >= 100000) FROM sales.orders"
        ).fetchone()
    assert (count, distinct, odd, extra) == (50000, 50000, 0, 0)
