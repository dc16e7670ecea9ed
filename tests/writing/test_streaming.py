"""The streaming sink (``foreach_batch``): exactly once per micro-batch across restarts and replays."""

from __future__ import annotations

import json
from pathlib import Path

import pyspark
import pytest
from psycopg import sql

from lakebase_spark import WriteInputError, foreach_batch

from ..conftest import DATABASE, ENDPOINT
from ..frames import assert_same_rows

SPARK_MAJOR = int(pyspark.__version__.split(".")[0])

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]

SCHEMA = "id long, customer string, amount double"


@pytest.fixture
def db(admin, emulator):
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    return admin


def add_file(folder: Path, number: int, rows: int = 100, *, first_id: int | None = None) -> None:
    start = number * rows if first_id is None else first_id
    lines = [
        json.dumps({"id": i, "customer": f"c{i % 7}", "amount": i * 0.5}) for i in range(start, start + rows)
    ]
    (folder / f"part-{number:04d}.json").write_text("\n".join(lines) + "\n")


def run_until_caught_up(spark, source: Path, checkpoint: Path, sink) -> None:
    """Run the stream until it has every file; ``sink`` is a foreachBatch function or a function that
    sets up a ``DataStreamWriter``."""
    stream = (
        spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(source))
    )  # a file a batch
    writer = (
        sink(stream.writeStream)
        if getattr(sink, "sets_up_writer", False)
        else stream.writeStream.foreachBatch(sink)
    )
    query = writer.option("checkpointLocation", str(checkpoint)).trigger(availableNow=True).start()
    query.awaitTermination(180)
    assert query.exception() is None, query.exception()


def replay_last_batch(checkpoint: Path) -> int:
    """Forget that the last batch finished, as a crash between the sink's commit and Spark's own does."""
    last = max(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    (checkpoint / "commits" / str(last)).unlink()
    (checkpoint / "commits" / f".{last}.crc").unlink(missing_ok=True)  # Hadoop's checksum of that file
    return last


SPARK_4 = pytest.mark.skipif(SPARK_MAJOR < 4, reason="format('lakebase') is Spark 4+")


@pytest.mark.parametrize(
    "sink_kind",
    [
        "jdbc",
        pytest.param("jar-free", marks=SPARK_4),  # foreach_batch(..., jar_free=True)
        pytest.param("stream-writer", marks=SPARK_4),  # writeStream.format("lakebase")
    ],
)
def test_a_restarted_stream_writes_every_row_once(
    spark, opts, db, broker_service, tmp_path, sink_kind
) -> None:
    db.execute("DROP TABLE IF EXISTS public.s_events")
    if db.execute("SELECT to_regclass('public.lakebase_spark_commits')").fetchone()[0]:  # an earlier run's
        db.execute("""DELETE FROM public.lakebase_spark_commits WHERE target = '"public"."s_events"'""")
    source, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    source.mkdir()
    calls: list[int] = []
    sink = foreach_batch(
        "public.s_events",
        endpoint=ENDPOINT,
        database=DATABASE,
        broker=broker_service,
        jar_free=sink_kind == "jar-free",
    )

    def counting_sink(batch, batch_id: int) -> None:
        calls.append(batch_id)
        sink(batch, batch_id)

    if sink_kind == "stream-writer":
        from lakebase_spark.datasource import register, source_options

        register(spark)
        built = source_options(ENDPOINT, database=DATABASE, broker=broker_service)

        def counting_sink(writer):  # the tasks run in Python workers: count batches by the checkpoint
            return writer.format("lakebase").options(**built).option("dbtable", "public.s_events")

        counting_sink.sets_up_writer = True

    for n in range(3):
        add_file(source, n)
    run_until_caught_up(spark, source, checkpoint, counting_sink)
    replayed = replay_last_batch(checkpoint)
    for n in range(3, 6):
        add_file(source, n)
    run_until_caught_up(spark, source, checkpoint, counting_sink)  # the restart: replays, then goes on

    if sink_kind == "stream-writer":
        calls = sorted(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
        assert replayed in calls  # Spark really ran the last batch again (and wrote its commit anew)...
    else:
        assert calls.count(replayed) == 2  # Spark really ran the last batch again...
    expected = spark.read.schema(SCHEMA).json(str(source))
    written = spark.read.format("jdbc").options(**opts).option("dbtable", "public.s_events").load()
    assert_same_rows(written, expected)
    assert db.execute("SELECT count(*), count(DISTINCT id) FROM public.s_events").fetchone() == (600, 600)
    # ...and the sink wrote it once: one finished write per batch id in the commit log.
    done = db.execute(
        "SELECT write_id FROM public.lakebase_spark_commits WHERE part = -1 AND write_id LIKE 'stream/%'"
        ' AND target = \'"public"."s_events"\''
    ).fetchall()
    assert sorted(int(w.rsplit("/", 1)[1]) for (w,) in done) == sorted(set(calls))


def test_a_streaming_upsert_keeps_the_latest_row_per_key(spark, db, broker_service, tmp_path) -> None:
    db.execute("DROP TABLE IF EXISTS public.s_latest")
    db.execute("CREATE TABLE public.s_latest (id bigint PRIMARY KEY, customer text, amount double precision)")
    source, checkpoint = tmp_path / "in", tmp_path / "checkpoint"
    source.mkdir()
    sink = foreach_batch(
        "public.s_latest",
        mode="upsert",
        key="id",
        endpoint=ENDPOINT,
        database=DATABASE,
        broker=broker_service,
    )
    add_file(source, 0, first_id=0)  # ids 0..99
    add_file(source, 1, first_id=50)  # ids 50..149: 50 updates, 50 new
    run_until_caught_up(spark, source, checkpoint, sink)
    replay_last_batch(checkpoint)
    add_file(source, 2, first_id=140)  # ids 140..239
    run_until_caught_up(spark, source, checkpoint, sink)
    rows = dict(db.execute("SELECT id, amount FROM public.s_latest").fetchall())
    assert rows == {i: i * 0.5 for i in range(0, 240)}


def test_a_streaming_sink_takes_append_or_upsert_only() -> None:
    with pytest.raises(WriteInputError, match="'append' or 'upsert'"):
        foreach_batch("public.x", mode="overwrite", endpoint=ENDPOINT)


@SPARK_4
def test_the_stream_writer_refuses_what_it_cannot_do_exactly_once(spark, broker_service, tmp_path) -> None:
    from lakebase_spark.datasource import register, source_options

    register(spark)
    built = source_options(ENDPOINT, database=DATABASE, broker=broker_service)
    rates = spark.readStream.format("rate").load()
    cases = [
        (rates.groupBy().count(), "complete", {}, "for complete mode, write each batch with foreach_batch"),
        (rates, "append", {"upsertKey": "value"}, "takes no option upsertKey"),
        (rates, "append", {"writeId": "w1"}, "takes no option writeId"),
    ]
    for n, (stream, output_mode, extra, expected) in enumerate(cases):
        writer = (
            stream.writeStream.format("lakebase").options(**built, **extra).option("dbtable", "public.s_x")
        )
        query = writer.outputMode(output_mode).option("checkpointLocation", str(tmp_path / str(n))).start()
        with pytest.raises(Exception, match=expected):
            query.awaitTermination(120)
