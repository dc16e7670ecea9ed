"""The emulator's read replica: a real hot standby (pg_basebackup + streaming replication) behind an
``ENDPOINT_TYPE_READ_ONLY`` endpoint, with real lag and real read-only errors."""

from __future__ import annotations

import threading
import time

import psycopg
import pyspark
import pytest

import lakebase_spark

from ..conftest import DATABASE, ENDPOINT

pytestmark = [pytest.mark.postgres]
REPLICA = "projects/test/branches/main/endpoints/replica"
spark4 = pytest.mark.skipif(
    int(pyspark.__version__.split(".")[0]) < 4, reason="Python data sources are Spark 4+"
)


@pytest.fixture(scope="module")
def replica(emulator):
    emulator.create_replica(REPLICA)
    return emulator.standby


def on_replica(broker_service):
    return lakebase_spark.connect(
        endpoint=REPLICA, database=DATABASE, tokens=broker_service.broker, autocommit=True
    )


def test_the_replica_is_a_read_only_endpoint_of_its_own(replica, workspace, emulator):
    endpoint = workspace.postgres.get_endpoint(name=REPLICA)
    assert endpoint.status.endpoint_type.value == "ENDPOINT_TYPE_READ_ONLY"
    primary = workspace.postgres.get_endpoint(name=ENDPOINT)
    assert primary.status.endpoint_type.value == "ENDPOINT_TYPE_READ_WRITE"
    assert endpoint.status.hosts.host != primary.status.hosts.host or replica.port != emulator.postgres.port


def test_writes_reach_the_replica_and_lag_is_real(replica, broker_service, admin):
    admin.execute("DROP TABLE IF EXISTS rp_t")
    admin.execute("CREATE TABLE rp_t (id integer)")
    admin.execute("GRANT SELECT, INSERT ON rp_t TO PUBLIC")
    admin.execute("INSERT INTO rp_t VALUES (1)")
    replica.wait_for_primary()
    with on_replica(broker_service) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
        assert conn.execute("SELECT count(*) FROM rp_t").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO rp_t VALUES (2)")
        replica.pause_replay()
        try:
            admin.execute("INSERT INTO rp_t VALUES (3)")
            time.sleep(0.5)
            assert conn.execute("SELECT count(*) FROM rp_t").fetchone()[0] == 1  # behind the primary
        finally:
            replica.resume_replay()
        replica.wait_for_primary()
        assert conn.execute("SELECT count(*) FROM rp_t").fetchone()[0] == 2


def test_a_snapshot_exported_on_the_replica_is_imported_there_only(replica, broker_service, emulator):
    with lakebase_spark.export_snapshot(REPLICA, database=DATABASE, broker=broker_service) as snap:
        with on_replica(broker_service) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            conn.execute(f"SET TRANSACTION SNAPSHOT '{snap.id}'")
            conn.execute("COMMIT")
        with psycopg.connect(emulator.admin_conninfo(DATABASE)) as primary:
            primary.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="invalid snapshot identifier"):
                primary.execute(f"SET TRANSACTION SNAPSHOT '{snap.id}'")


@pytest.mark.spark
@pytest.mark.parametrize("consistent", [True, False])
def test_spark_reads_the_replica(spark, replica, broker_service, admin, consistent):
    admin.execute("DROP TABLE IF EXISTS rp_read")
    admin.execute(
        "CREATE TABLE rp_read AS SELECT i AS id, md5(i::text) AS note FROM generate_series(1, 5000) i"
    )
    admin.execute("GRANT SELECT ON rp_read TO PUBLIC")
    replica.wait_for_primary()
    df = lakebase_spark.read(
        spark,
        "public.rp_read",
        endpoint=REPLICA,
        database=DATABASE,
        key="note",
        partitions=3,
        consistent=consistent,
        broker=broker_service,
    )
    try:
        assert df.count() == 5000
        assert df.select("id").distinct().count() == 5000
    finally:
        # A snapshot held on a standby holds back the replay of changes that conflict with it (up to
        # max_standby_streaming_delay, 30 s by default, after which the standby cancels it).
        lakebase_spark.Snapshot.close_all()


def write_to_replica(spark, broker_service, jar_free):
    df = spark.range(10)
    if jar_free:
        from lakebase_spark.datasource import register, source_options

        register(spark)
        opts = source_options(REPLICA, database=DATABASE, broker=broker_service)
        df.write.format("lakebase").options(**opts).option("dbtable", "public.rp_write").mode("append").save()
    else:
        lakebase_spark.write(
            df, "public.rp_write", endpoint=REPLICA, database=DATABASE, broker=broker_service
        )


@pytest.mark.spark
@pytest.mark.parametrize("jar_free", [False, pytest.param(True, marks=spark4)])
def test_a_write_to_the_replica_fails_before_any_row_moves(spark, replica, broker_service, admin, jar_free):
    admin.execute("DROP TABLE IF EXISTS rp_write")
    replica.wait_for_primary()
    with pytest.raises(Exception, match=r"read replica .* write to the primary"):
        write_to_replica(spark, broker_service, jar_free)
    assert admin.execute("SELECT to_regclass('public.rp_write')").fetchone()[0] is None


@pytest.mark.spark
def test_bounded_staleness_refuses_or_waits(spark, replica, broker_service, admin):
    admin.execute("DROP TABLE IF EXISTS rp_lag")
    admin.execute("CREATE TABLE rp_lag AS SELECT i AS id FROM generate_series(1, 100) i")
    admin.execute("GRANT SELECT ON rp_lag TO PUBLIC")
    replica.wait_for_primary()

    def read(**kwargs):
        return lakebase_spark.read(
            spark,
            "public.rp_lag",
            endpoint=REPLICA,
            database=DATABASE,
            partitions=2,
            consistent=False,
            broker=broker_service,
            **kwargs,
        )

    assert read(max_lag=5).count() == 100  # caught up: lag 0
    replica.pause_replay()
    try:
        admin.execute("INSERT INTO rp_lag VALUES (101)")
        deadline = time.monotonic() + 30
        with on_replica(broker_service) as conn:
            while lakebase_spark.reading.replicas.replay_lag(conn) < 1.5 and time.monotonic() < deadline:
                time.sleep(0.1)
        with pytest.raises(lakebase_spark.ReplicaLagError, match="behind its primary") as refused:
            read(max_lag=1)
        assert refused.value.lag >= 1.5
        assert read().count() == 100  # without a bound, the stale replica is read as it is
        threading.Timer(1.0, replica.resume_replay).start()
        assert read(max_lag=1, lag_wait=30).count() == 101  # waits for the replica to catch up
    finally:
        replica.resume_replay()


@pytest.mark.spark
def test_a_shard_reads_from_its_replica_and_writes_to_its_primary(spark, replica, broker_service, admin):
    from lakebase_spark.sharding import RangeShardMap, Shard, read_sharded, write_sharded

    fleet = RangeShardMap("rp_fleet", "bigint")
    fleet.add_shard(Shard("one", endpoint=ENDPOINT, database=DATABASE, read_endpoint=REPLICA))
    fleet.add_range(0, None, "one")
    assert RangeShardMap.from_dict(fleet.to_dict()).shards["one"].read_endpoint == REPLICA
    admin.execute("DROP TABLE IF EXISTS rp_sharded")
    admin.execute("CREATE TABLE rp_sharded (id bigint PRIMARY KEY)")
    admin.execute("GRANT ALL ON rp_sharded TO PUBLIC")
    write_sharded(spark.range(100), fleet, table="public.rp_sharded", key="id", broker=broker_service)
    replica.wait_for_primary()

    def read():
        df = read_sharded(
            spark, fleet, table="public.rp_sharded", key="id", partitions=2, broker=broker_service
        )
        return df.count()

    assert read() == 100
    replica.pause_replay()
    try:
        write_sharded(
            spark.range(100, 150), fleet, table="public.rp_sharded", key="id", broker=broker_service
        )
        assert admin.execute("SELECT count(*) FROM rp_sharded").fetchone()[0] == 150  # the primary
        assert read() == 100  # the paused replica
    finally:
        replica.resume_replay()
    replica.wait_for_primary()
    assert read() == 150
