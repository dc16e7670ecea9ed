"""``spark.readStream.format("lakebase")``: a table's changes from a replication slot, after a snapshot
taken at the slot's start, exactly once (``local[2]``; the jobs in ``tests/jobs/change_job.py`` run the
seam on ``local-cluster`` and on a Connect server with no jar).
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pyspark
import pytest

from ..conftest import DATABASE, ENDPOINT
from .streams import TOTAL, Mover, Replay, make_accounts, run_stream, table_rows

SPARK_MAJOR, SPARK_MINOR = (int(p) for p in pyspark.__version__.split(".")[:2])
pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.skipif((SPARK_MAJOR, SPARK_MINOR) < (4, 2), reason="Python stream readers: Spark 4.2+"),
]


@pytest.fixture(scope="module")
def source(spark, broker_service):
    from lakebase_spark.datasource import register, source_options

    register(spark)
    return source_options(ENDPOINT, database=DATABASE, broker=broker_service)


@pytest.fixture
def slot(admin):
    """A slot name of the test's own; the slot (if the stream made one) is dropped afterwards."""
    name = f"cs_{uuid.uuid4().hex[:10]}"
    yield name
    admin.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s", (name,)
    )


def test_the_snapshot_and_the_changes_meet_exactly_under_concurrent_writers(
    spark, source, emulator, admin, slot, tmp_path
) -> None:
    """Money moves between accounts (the total never changes) while the slot is made, the snapshot is read
    and batches follow; the stream is stopped, its last batch forgotten, and restarted. Replayed onto an
    empty table, the output equals the source, and every batch boundary holds the total."""
    conninfo, table = emulator.admin_conninfo(DATABASE), "public.cs_accounts"
    make_accounts(conninfo, table, emulator.user_name)
    mover = Mover(conninfo, table)
    mover.start()
    replay, checkpoint = Replay(), str(tmp_path / "checkpoint")
    try:
        while mover.transactions < 20:  # the slot is made while transactions commit
            time.sleep(0.05)
        # The sink applies batch 3, then the query stops before Spark records it (a crash there): the
        # restarted query runs batch 3 again, which must bring the same rows.
        replay.fail_after = 3
        run_stream(spark, source, table, slot, checkpoint, replay, until=lambda: False, fails="injected")
        run_stream(spark, source, table, slot, checkpoint, replay, until=lambda: len(replay.delivered) >= 7)
    finally:
        mover.stopping.set()
        mover.join(30)
    assert mover.error is None
    run_stream(spark, source, table, slot, checkpoint, replay, available_now=True)  # what is left
    assert mover.transactions > 100
    assert 3 in replay.replays  # delivered again (a stop between sink and commit may add one), the same rows
    assert len(replay.delivered) >= 3
    assert set(replay.totals) == {TOTAL}, replay.totals
    assert replay.rows == table_rows(conninfo, table)
    # The slot follows what Spark committed (the last batch of an AvailableNow run is committed by the
    # next run): every change of the batches before the last is behind it.
    confirmed = admin.execute(
        "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots WHERE slot_name = %s", (slot,)
    ).fetchone()[0]
    *earlier, _ = sorted(replay.delivered)
    assert confirmed > max(lsn for batch in earlier for *_, lsn in replay.delivered[batch])


def test_a_large_transaction_stays_in_one_batch_and_available_now_stops(
    spark, source, emulator, slot, tmp_path
) -> None:
    conninfo, table = emulator.admin_conninfo(DATABASE), "public.cs_big"
    make_accounts(conninfo, table, emulator.user_name)
    checkpoint = str(tmp_path / "checkpoint")
    replay = Replay()
    run_stream(spark, source, table, slot, checkpoint, replay, available_now=True, maxRowsPerTrigger="100")
    assert list(replay.delivered) == [0]  # the snapshot
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for i in range(3):
            with conn.transaction():
                conn.execute(f"UPDATE {table} SET bal = bal + 1 - {i} WHERE id <= 150")
    run_stream(spark, source, table, slot, checkpoint, replay, available_now=True, maxRowsPerTrigger="100")
    sizes = [len(replay.delivered[b]) for b in sorted(replay.delivered)[1:]]
    assert sizes == [300, 300, 300]  # one transaction (150 updates, two rows each) a batch, never split
    assert replay.rows == table_rows(conninfo, table)
