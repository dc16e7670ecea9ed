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


# -- each failure before a batch reads: a typed error naming the fix, never a silent restart -------------


def stream_error(spark, options, table, slot, checkpoint, **extra) -> str:
    """The error a stream fails with (its first run, AvailableNow)."""
    sink = Replay()
    query = run_stream(spark, options, table, slot, checkpoint, sink, available_now=True, fails="", **extra)
    return str(query.exception())


def test_a_dropped_slot_a_taken_name_a_busy_slot_fail_with_the_fix(
    spark, source, emulator, admin, slot, tmp_path
) -> None:
    conninfo, table = emulator.admin_conninfo(DATABASE), "public.cs_errors"
    make_accounts(conninfo, table, emulator.user_name)
    run_stream(spark, source, table, slot, str(tmp_path / "a"), Replay(), available_now=True)
    emulator.faults.drop_slot(slot)  # as Lakebase after ~40 idle hours
    error = stream_error(spark, source, table, slot, str(tmp_path / "a"))
    assert "SlotMissingError" in error
    assert f"Replication slot '{slot}' does not exist" in error
    assert "restart the stream from scratch" in error
    # A new stream (no checkpoint) whose slot name is taken: it cannot know what that slot held.
    admin.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (slot,))
    error = stream_error(spark, source, table, slot, str(tmp_path / "b"))
    assert "SlotExistsError" in error
    assert "already exists" in error
    # Another reader holds the slot (pg_recvlogical here): one reader per slot at a time.
    admin.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    run_stream(spark, source, table, slot, str(tmp_path / "c"), Replay(), available_now=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"UPDATE {table} SET bal = bal WHERE id = 1")
    reader = recvlogical(emulator, slot)
    try:
        error = stream_error(spark, source, table, slot, str(tmp_path / "c"))
    finally:
        reader.kill()
        reader.wait(30)
    assert "SlotBusyError" in error
    assert "is active" in error


def test_an_invalidated_slot_fails_naming_the_recovery_which_works(
    spark, source, emulator, slot, tmp_path
) -> None:
    """The server removed WAL the slot needed (wal_status lost, as when max_slot_wal_keep_size is
    exceeded while a stream is stopped): SlotLostError before any batch, never a silent restart from now;
    the recovery it names (drop the slot and the checkpoint, start again) brings the copy back whole."""
    conninfo, table = emulator.admin_conninfo(DATABASE), "public.cs_lost"
    make_accounts(conninfo, table, emulator.user_name)
    checkpoint = str(tmp_path / "checkpoint")
    run_stream(spark, source, table, slot, checkpoint, Replay(), available_now=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"UPDATE {table} SET bal = bal - 5 WHERE id = 1")
        conn.execute(f"UPDATE {table} SET bal = bal + 5 WHERE id = 2")
    emulator.faults.invalidate_slot(slot)
    error = stream_error(spark, source, table, slot, checkpoint)
    assert "SlotLostError" in error
    assert "To fix: drop the slot (lakebase_spark.changes.drop_slot(...)) and the stream's" in error
    start_again(spark, source, emulator, table, slot, checkpoint)


def start_again(spark, source, emulator, table: str, slot: str, checkpoint: str) -> None:
    """The recovery the errors name: drop the slot and the checkpoint, start the stream again. The copy
    it makes (a new snapshot, then the changes) is the table, whole."""
    import shutil

    from lakebase_spark.changes import drop_slot

    assert drop_slot(slot, ENDPOINT, database=DATABASE, workspace_client=emulator.workspace_client("pat"))
    shutil.rmtree(checkpoint)
    again = Replay()
    run_stream(spark, source, table, slot, checkpoint, again, available_now=True)
    assert again.rows == table_rows(emulator.admin_conninfo(DATABASE), table)


def recvlogical(emulator, slot: str):
    """pg_recvlogical streaming from ``slot`` (which makes it active) until killed."""
    import subprocess

    from lakebase_spark.testing.pgbin import find_bindir

    conninfo = emulator.admin_conninfo(DATABASE) + " replication=database"
    reader = subprocess.Popen(
        [str(find_bindir() / "pg_recvlogical"), "-d", conninfo, "--slot", slot, "--start", "-f", "/dev/null",
         "-o", "proto_version=1", "-o", f"publication_names=lakebase_spark_{slot}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            active = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
            ).fetchone()
            if active and active[0]:
                return reader
            time.sleep(0.1)
    reader.kill()
    raise AssertionError("pg_recvlogical did not take the slot")


def test_a_role_without_replication_or_publication_rights_is_told_what_to_ask_for(
    spark, source, emulator, admin, broker_service, slot, tmp_path
) -> None:
    from lakebase_spark import BrokerService, TokenBroker
    from lakebase_spark.datasource import source_options

    # A table the stream's role may read but does not own: it may not make a publication for it.
    admin.execute("DROP TABLE IF EXISTS public.cs_owned")
    admin.execute("CREATE TABLE public.cs_owned (id int PRIMARY KEY, bal bigint, note text)")
    admin.execute(f'GRANT SELECT ON public.cs_owned TO "{emulator.user_name}"')
    error = stream_error(spark, source, "public.cs_owned", slot, str(tmp_path / "a"))
    assert "PublicationMissingError" in error
    assert f'CREATE PUBLICATION "lakebase_spark_{slot}" FOR TABLE "public"."cs_owned"' in error
    # A principal whose role lacks REPLICATION (on Lakebase only the project owner's has it).
    pat = emulator.add_user("reader@example.com")
    with BrokerService(TokenBroker(emulator.workspace_client("pat", token=pat))) as other:
        options = source_options(ENDPOINT, database=DATABASE, broker=other)
        error = stream_error(spark, options, "public.cs_owned", slot, str(tmp_path / "b"))
    assert "ReplicationPrivilegeError" in error
    assert "lacks REPLICATION" in error


def test_a_snapshot_cut_short_fails_naming_the_recovery_which_works(
    spark, source, emulator, admin, slot, tmp_path
) -> None:

    conninfo, table = emulator.admin_conninfo(DATABASE), "public.cs_cut"
    make_accounts(conninfo, table, emulator.user_name)
    checkpoint = str(tmp_path / "checkpoint")
    replay = Replay()
    replay.fail_after = 0  # the snapshot batch applied, then the driver stops before Spark records it
    run_stream(spark, source, table, slot, checkpoint, replay, until=lambda: False, fails="injected")
    error = stream_error(spark, source, table, slot, checkpoint)
    assert "SnapshotLostError" in error
    assert "drop the slot (lakebase_spark.changes.drop_slot(...)) and the query's checkpoint" in error
    start_again(spark, source, emulator, table, slot, checkpoint)  # the recovery, as the error says


def test_truncate_and_a_schema_change_stop_the_stream_naming_them(
    spark, source, emulator, slot, tmp_path
) -> None:
    conninfo = emulator.admin_conninfo(DATABASE)
    for table, change, named in (
        ("public.cs_truncated", "TRUNCATE {t}", "was truncated"),
        ("public.cs_altered", "ALTER TABLE {t} ADD COLUMN extra int", 'of "public"."cs_altered" changed'),
    ):
        make_accounts(conninfo, table, emulator.user_name)
        name, checkpoint = f"{slot}_{table[-4:]}", str(tmp_path / table)
        run_stream(spark, source, table, name, checkpoint, Replay(), available_now=True)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(change.format(t=table))
            conn.execute(f"INSERT INTO {table} (id, bal) VALUES (-1, 0)")
        error = stream_error(spark, source, table, name, checkpoint)
        assert named in error
        assert "start a new stream" in error
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))


def test_a_server_without_logical_decoding_is_refused_before_anything() -> None:
    import psycopg as pg

    from lakebase_spark.changes import LogicalDecodingOffError
    from lakebase_spark.postgres.slots import check_replication
    from lakebase_spark.testing.postgres import PostgresServer

    server = PostgresServer(ldap_port=1, settings={"wal_level": "replica"})
    server.start()
    try:
        with (
            pg.connect(server.admin_conninfo("postgres"), autocommit=True) as conn,
            pytest.raises(LogicalDecodingOffError, match="set wal_level = logical"),
        ):
            check_replication(conn)
    finally:
        server.stop()


TYPES = """
    id bigint PRIMARY KEY, i2 smallint, i4 integer, f4 real, f8 double precision, n numeric(12,2),
    nn numeric, t text, v varchar(20), b boolean, d date, ts timestamp, tz timestamptz, bin bytea,
    u uuid, j jsonb, ai integer[], at text[], an numeric(10,3)[], iv interval
"""
VALUES = (
    "SELECT g, (g % 30000)::int2, g, g / 7.0, g / 3.0, g * 1.25, g / 9.0, 't' || g, 'v' || (g % 100), "
    "g % 2 = 0, date '2024-01-01' + g % 400, "
    "timestamp '2024-01-01 00:00:00.123456' + g * interval '1 second', "
    "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', decode(lpad(to_hex(g), 8, '0'), 'hex'), "
    "md5(g::text)::uuid, jsonb_build_object('g', g), ARRAY[g, NULL], ARRAY['a' || g, NULL], "
    "ARRAY[g / 8.0]::numeric(10,3)[], g * interval '1 minute' FROM generate_series({first}, {last}) g"
)


def test_snapshot_and_change_rows_hold_what_a_batch_read_holds(
    spark, source, emulator, slot, tmp_path
) -> None:
    """Every type the batch reader maps: the snapshot's rows and the same values arriving as changes equal
    what spark.read.format("lakebase") reads (NULLs, special values and BC dates included)."""
    conninfo, table = emulator.admin_conninfo(DATABASE), "public.cs_types"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'SET ROLE "{emulator.user_name}"')
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} ({TYPES})")
        conn.execute(f"INSERT INTO {table} {VALUES.format(first=1, last=500)}")
        conn.execute(f"INSERT INTO {table} (id) VALUES (0)")  # NULL everywhere else
        special = "(-1, 'NaN', 'Infinity', '-infinity', 'infinity', '0044-03-15 12:00:00+00 BC')"
        conn.execute(f"INSERT INTO {table} (id, f4, f8, d, ts, tz) VALUES {special}")
    batches: dict[int, object] = {}
    checkpoint = str(tmp_path / "checkpoint")

    def keep(batch, batch_id) -> None:
        batches[batch_id] = batch.drop("_lsn", "_commit_timestamp", "_xid").cache()
        batches[batch_id].count()

    run_stream(spark, source, table, slot, checkpoint, keep, available_now=True)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # the same values again, as changes
        conn.execute(f"INSERT INTO {table} {VALUES.format(first=501, last=1000)}")
    run_stream(spark, source, table, slot, checkpoint, keep, available_now=True)
    read = spark.read.format("lakebase").options(**source).option("dbtable", table).load()
    columns = read.columns
    snapshot, changes = batches[0], batches[1]
    assert {r._change_type for r in snapshot.select("_change_type").distinct().collect()} == {"insert"}
    assert snapshot.select(*columns).exceptAll(read.where("id <= 500")).count() == 0
    assert read.where("id <= 500").exceptAll(snapshot.select(*columns)).count() == 0
    assert changes.select(*columns).exceptAll(read.where("id > 500")).count() == 0
    assert read.where("id > 500").exceptAll(changes.select(*columns)).count() == 0
    assert changes.count() == 500


def test_old_values_follow_the_replica_identity_and_missing_values_are_named(
    spark, source, emulator, slot, tmp_path
) -> None:
    """DEFAULT identity: a delete and a preimage carry the key, an update that leaves a TOASTed value alone
    does not send it: each lists what it misses. FULL: whole old rows, the unchanged value filled in."""
    import uuid as uuid_module

    conninfo = emulator.admin_conninfo(DATABASE)
    big = "".join(uuid_module.uuid4().hex for _ in range(400))  # TOASTed out of line
    seen: dict[str, list] = {}
    for identity in ("DEFAULT", "FULL"):
        table = f"public.cs_identity_{identity.lower()}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'SET ROLE "{emulator.user_name}"')
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, n int, big text)")
            conn.execute(f"ALTER TABLE {table} REPLICA IDENTITY {identity}")
            conn.execute(f"INSERT INTO {table} VALUES (1, 1, %s)", (big,))
        name, checkpoint = f"{slot}_{identity.lower()}", str(tmp_path / identity)
        rows: list = []

        def keep(batch, _, rows=rows) -> None:
            rows.extend(batch.select("_change_type", "n", "big", "_missing_columns").collect())

        run_stream(spark, source, table, name, checkpoint, keep, available_now=True)  # the snapshot
        rows.clear()
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"UPDATE {table} SET n = 2 WHERE id = 1")  # big unchanged
            conn.execute(f"DELETE FROM {table} WHERE id = 1")
        run_stream(spark, source, table, name, checkpoint, keep, available_now=True)
        seen[identity] = [(r[0], r[1], r[2] == big if r[2] else None, r[3]) for r in rows]
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
    assert seen["DEFAULT"] == [
        ("update_preimage", None, None, ["n", "big"]),
        ("update_postimage", 2, None, ["big"]),  # not sent: unchanged, and no old row to take it from
        ("delete", None, None, ["n", "big"]),
    ]
    assert seen["FULL"] == [
        ("update_preimage", 1, True, None),
        ("update_postimage", 2, True, None),  # filled from the old row
        ("delete", 2, True, None),
    ]


def test_a_stream_outlives_its_tokens(spark, emulator, workspace, slot, tmp_path) -> None:
    """3 s tokens and a stream of many batches: every batch's logins use a current token (the broker
    mints as time passes), and the stream neither fails nor misses a change."""
    from lakebase_spark import BrokerService, TokenBroker
    from lakebase_spark.datasource import source_options

    conninfo, table = emulator.admin_conninfo(DATABASE), "public.cs_rotation"
    make_accounts(conninfo, table, emulator.user_name)
    old = emulator.token_ttl
    emulator.token_ttl = 3
    mover = Mover(conninfo, table)
    replay = Replay()
    try:
        with BrokerService(TokenBroker(workspace)) as service:
            options = source_options(ENDPOINT, database=DATABASE, broker=service, credentials="broker")
            mover.start()
            started = time.monotonic()
            run_stream(
                spark, options, table, slot, str(tmp_path / "checkpoint"), replay,
                until=lambda: time.monotonic() - started > 12 and len(replay.delivered) >= 6,
            )  # fmt: skip
            mover.stopping.set()
            mover.join(30)
            run_stream(spark, options, table, slot, str(tmp_path / "checkpoint"), replay, available_now=True)
            mints = service.stats()["mints"]
    finally:
        mover.stopping.set()
        emulator.token_ttl = old
    assert mover.error is None
    assert mints >= 4  # tokens came and went while the stream ran
    assert set(replay.totals) == {TOTAL}
    assert replay.rows == table_rows(conninfo, table)
