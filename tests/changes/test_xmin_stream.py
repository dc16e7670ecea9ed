"""``spark.readStream.format("lakebase").option("mode", "xmin")``: a change stream with no replication slot,
for a role without REPLICATION: the current state of the rows changed since the last batch, by
transaction id (``local[2]``)."""

from __future__ import annotations

import threading
import time

import psycopg
import pyspark
import pytest

from ..conftest import DATABASE, ENDPOINT
from .streams import Mover, make_accounts, run_stream, table_rows

SPARK_MAJOR, SPARK_MINOR = (int(p) for p in pyspark.__version__.split(".")[:2])
pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.skipif((SPARK_MAJOR, SPARK_MINOR) < (4, 2), reason="Python stream readers: Spark 4.2+"),
]


class Upserts:
    """A foreachBatch sink that upserts each batch's rows by id (what a sink of an xmin stream does)."""

    def __init__(self) -> None:
        self.rows: dict[int, tuple[int, str | None]] = {}
        self.batches: dict[int, int] = {}
        self.lock = threading.Lock()

    def __call__(self, batch, batch_id: int) -> None:
        rows = batch.select("id", "bal", "note", "_change_type", "_xid").collect()
        with self.lock:
            assert {r._change_type for r in rows} <= {"upsert"}
            for r in sorted(rows, key=lambda r: r._xid):  # a batch Spark runs again: applied again, alike
                self.rows[r.id] = (r.bal, r.note)
            self.batches[batch_id] = len(rows)


@pytest.fixture(scope="module")
def reader_options(spark, emulator, workspace):
    """A principal whose role has no REPLICATION (on Lakebase only the project owner's has it)."""
    from lakebase_spark import BrokerService, TokenBroker
    from lakebase_spark.datasource import register, source_options

    register(spark)
    pat = emulator.add_user("xmin-reader@example.com")
    with BrokerService(TokenBroker(emulator.workspace_client("pat", token=pat))) as service:
        yield source_options(ENDPOINT, database=DATABASE, broker=service)


def test_a_slot_free_stream_keeps_a_copy_without_replication_and_a_late_commit_arrives(
    spark, reader_options, emulator, admin, tmp_path
) -> None:
    """Accounts change under a writer while the stream runs (stopped and restarted on its checkpoint);
    a transaction that began before many others and commits after them all is read. Upserted by id,
    the output holds every row of the table as it is, plus the rows deleted (a slot-free stream sees
    no delete)."""
    conninfo, table = emulator.admin_conninfo(DATABASE), "public.xs_accounts"
    make_accounts(conninfo, table, emulator.user_name)
    role = "xmin-reader@example.com"
    admin.execute(f'GRANT SELECT ON {table} TO "{role}"')
    assert admin.execute("SELECT NOT rolreplication FROM pg_roles WHERE rolname = %s", (role,)).fetchone()[0]
    sink, checkpoint = Upserts(), str(tmp_path / "checkpoint")
    mover = Mover(conninfo, table)
    late = psycopg.connect(conninfo)
    try:
        mover.start()
        run_stream(spark, reader_options, table, None, checkpoint, sink, mode="xmin",
                   until=lambda: len(sink.batches) >= 4)  # fmt: skip
        # A transaction with an id below the next ones, open while they commit and a batch runs.
        late.execute(f"INSERT INTO {table} VALUES (1000000, 0, 'late')")
        moved = mover.transactions
        while mover.transactions < moved + 30:
            time.sleep(0.05)
        run_stream(spark, reader_options, table, None, checkpoint, sink, mode="xmin", available_now=True)
        mover.stopping.set()
        mover.join(30)
        assert mover.error is None
        late.commit()  # after every transaction of the writer
    finally:
        mover.stopping.set()
        late.close()
    assert 1000000 not in sink.rows
    run_stream(spark, reader_options, table, None, checkpoint, sink, mode="xmin", available_now=True)
    source = table_rows(conninfo, table)
    assert sink.rows[1000000] == (0, "late")
    assert {key: sink.rows.get(key) for key in source} == source
    assert set(sink.rows) - set(source), "the writer closes accounts: their last state stays in the output"


def test_options_a_schema_change_and_a_wrapped_around_cluster_are_refused_with_the_fix(
    spark, reader_options, emulator, admin, tmp_path
) -> None:
    conninfo, table = emulator.admin_conninfo(DATABASE), "public.xs_refused"
    make_accounts(conninfo, table, emulator.user_name, accounts=10)
    admin.execute(f'GRANT SELECT ON {table} TO "xmin-reader@example.com"')

    def load(**options: str):
        reader = spark.readStream.format("lakebase").options(**reader_options).option("dbtable", table)
        return reader.options(**options).load()

    with pytest.raises(Exception, match=r"mode=xmin uses no replication slot.*leave out option.*slotName"):
        load(mode="xmin", slotName="xs_slot")
    with pytest.raises(Exception, match=r"option mode is 'slot'.*or 'xmin'.*got 'diff'"):
        load(mode="diff")
    stream = spark.readStream.format("lakebase").options(**reader_options).option("dbtable", table)
    query = stream.schema("id int").load().writeStream.format("noop").start()
    with pytest.raises(Exception, match=r"needs option slotName.*or option mode=xmin"):
        query.awaitTermination(60)
    sink, checkpoint = Upserts(), str(tmp_path / "checkpoint")
    run_stream(spark, reader_options, table, None, checkpoint, sink, mode="xmin", available_now=True)
    assert sink.batches == {0: 10}
    admin.execute(f"ALTER TABLE {table} ADD COLUMN extra int")
    run_stream(spark, reader_options, table, None, checkpoint, sink, mode="xmin", available_now=True,
               fails="SchemaChangedError")  # fmt: skip

    from lakebase_spark.changes import XidWraparoundError
    from lakebase_spark.changes.xids import horizon
    from lakebase_spark.testing.postgres import PostgresServer

    server = PostgresServer(ldap_port=1)
    server.start()
    try:
        with psycopg.connect(server.admin_conninfo("postgres"), autocommit=True) as conn:
            assert horizon(conn) < 1 << 32
        server.suspend()
        server.reset_wal("-e", "1")  # as a cluster that has used 2^32 transaction ids
        server.wake(0, 0)
        with (
            psycopg.connect(server.admin_conninfo("postgres"), autocommit=True) as conn,
            pytest.raises(XidWraparoundError, match=r"more than 2\^32.*Use mode=slot"),
        ):
            horizon(conn)
    finally:
        server.stop()


def test_xmin_rows_hold_what_a_batch_read_holds(spark, reader_options, emulator, admin, tmp_path) -> None:
    """Every type the batch reader maps, through the first batch (the whole table) and a later one."""
    from .test_change_stream import TYPES, VALUES

    conninfo, table = emulator.admin_conninfo(DATABASE), "public.xs_types"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET ROLE "{emulator.user_name}"')
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} ({TYPES})")
        conn.execute(f"INSERT INTO {table} {VALUES.format(first=1, last=300)}")
        conn.execute(f"INSERT INTO {table} (id) VALUES (0)")
    admin.execute(f'GRANT SELECT ON {table} TO "xmin-reader@example.com"')
    batches: dict[int, object] = {}

    def keep(batch, batch_id) -> None:
        batches[batch_id] = batch.cache()
        batches[batch_id].count()

    checkpoint = str(tmp_path / "checkpoint")
    run_stream(spark, reader_options, table, None, checkpoint, keep, mode="xmin", available_now=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} {VALUES.format(first=301, last=600)}")
        conn.execute(f"UPDATE {table} SET t = 'changed' WHERE id = 7")
    time.sleep(0.2)
    run_stream(spark, reader_options, table, None, checkpoint, keep, mode="xmin", available_now=True)
    read = spark.read.format("lakebase").options(**reader_options).option("dbtable", table).load()
    columns = read.columns
    first, later = batches[0], batches[max(batches)]
    assert first.select(*columns).exceptAll(read.where("id <= 300 AND id != 7")).count() == 1  # id 7 before
    assert read.where("id <= 300 AND id != 7").exceptAll(first.select(*columns)).count() == 0
    assert later.select(*columns).exceptAll(read.where("id > 300 OR id = 7")).count() == 0
    assert read.where("id > 300 OR id = 7").exceptAll(later.select(*columns)).count() == 0
    xids = later.select("_xid").distinct().collect()
    assert len(xids) == 2  # the insert's and the update's transactions
    assert all(r._xid > 0 for r in xids)
