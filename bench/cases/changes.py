"""Case 11: change streams (``spark.readStream.format("lakebase")``) against the server's own decoding rate
(``pg_recvlogical`` with ``test_decoding`` to /dev/null, over the same changes), against what users do
today (reading the whole table again with the batch reader), and their latency under a steady load.

Each round makes two fresh slots at one moment (ours, by a stream that starts at the latest position,
and the baseline's), then commits the round's changes (updates of 1 % of the rows, 1,000 to a
transaction), then times each reader over exactly those changes: our stream's one change batch into
Spark's ``noop`` sink (the batch's ``triggerExecution``; a whole Trigger.AvailableNow run, the query's
start included, is reported beside it), ``pg_recvlogical`` to the changes' end LSN, and a batch read
of the whole table into ``noop``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from typing import Any

from pyspark.sql import functions as F

from lakebase_spark.datasource import register, source_options
from lakebase_spark.postgres.pgoutput import lsn_text, parse_lsn

from ..context import Context
from ..data import ORDERS
from ..env import DATABASE, ENDPOINT
from ..measure import interleave, timed
from ..readjob import noop_write
from ..results import CaseResult, Goal, Table
from ..results import versus as compare

TABLE = "public.orders_changes"
CHUNK = 1_000
UPDATE_RANGE = f"UPDATE {TABLE} SET amount = amount + 1 WHERE id >= %s AND id < %s"  # noqa: S608


def run(ctx: Context) -> CaseResult:
    env, rows = ctx.env, ctx.cfg.rows
    register(env.spark)
    opts = source_options(ENDPOINT, database=DATABASE, broker=env.broker, credentials="broker")
    with env.admin() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        conn.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM {ORDERS}")  # noqa: S608
        conn.execute(f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)")
        conn.execute(f"VACUUM (ANALYZE) {TABLE}")
    workdir = tempfile.mkdtemp(prefix="lakebase-bench-changes-")
    try:
        return _run(ctx, opts, rows, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        with env.admin() as conn:
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                "WHERE slot_name LIKE 'bench_changes%' AND NOT active"
            )
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")


def _run(ctx: Context, opts: dict[str, str], rows: int, workdir: str) -> CaseResult:
    env = ctx.env
    changed = max(rows // 100, 1)
    rounds = {"n": 0}
    # The round's two slots, made by whichever side runs first in the round (the order alternates)
    slots: dict[str, tuple[str, int]] = {}

    def prepare() -> None:
        """Fresh slots at one moment, then the round's changes, flushed."""
        rounds["n"] += 1
        ours, theirs = (f"bench_changes_{rounds['n']}_{kind}_{uuid.uuid4().hex[:6]}" for kind in "ab")
        _stream(env.spark, opts, ours, os.path.join(workdir, ours), starting="latest")  # the slot only
        with env.admin() as conn:
            conn.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (theirs,))
            first = 1 + (rounds["n"] * changed) % max(rows - changed, 1)
            for low in range(first, first + changed, CHUNK):
                high = min(low + CHUNK, first + changed)
                conn.execute(UPDATE_RANGE, (low, high))
            end = parse_lsn(conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0])
            while parse_lsn(conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()[0]) < end:
                time.sleep(0.01)
        slots.update(ours=(ours, end), theirs=(theirs, end))

    def take(side: str) -> tuple[str, int]:
        if side not in slots:
            prepare()
        return slots.pop(side)

    whole: list[float] = []

    def ours() -> float:
        slot, _ = take("ours")
        env.settle()
        started = time.perf_counter()
        batch = _stream(env.spark, opts, slot, os.path.join(workdir, slot))
        whole.append(time.perf_counter() - started)
        _drop(env, slot)
        return changed / batch

    def recvlogical() -> float:
        slot, end = take("theirs")
        seconds = env_recvlogical(env, slot, end)
        _drop(env, slot)
        return changed / seconds

    def reread() -> float:
        env.settle()
        df = env.spark.read.format("lakebase").options(**opts).option("dbtable", TABLE).load()
        return rows / timed(lambda: noop_write(df))

    rates = interleave(
        {"ours": ours, "pg_recvlogical": recvlogical, "reread": reread},
        repeats=ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
    )
    whole = whole[len(whole) - len(rates["ours"]) :]  # the warm-up rounds dropped
    # Bringing a copy of the table up to date, as runs a minute: one change batch (ours), pg_recvlogical
    # receiving the same changes (a reader outside Spark, for scale), or a re-read of it all
    syncs = {
        "batch": [60 * r / changed for r in rates["ours"]],
        "decoding": [60 * r / changed for r in rates["pg_recvlogical"]],
        "reread": [60 * r / rows for r in rates["reread"]],
    }
    latency = _latency(ctx, opts, workdir)
    comparisons = [
        compare(
            rates,
            ("ours", f"a change batch ({changed:,} updates) into Spark's noop sink"),
            ("pg_recvlogical", "pg_recvlogical, test_decoding, to /dev/null: the server's decoding rate"),
            "our changes/s ÷ pg_recvlogical's changes/s, the same changes",
            Goal(">=", 0.5),
            unit="changes/s",
        ),
        compare(
            syncs,
            ("batch", f"one change batch of the {changed:,} changed rows (1 %)"),
            ("reread", f"reading all {rows:,} rows again (spark.read.format('lakebase'), noop)"),
            "re-read seconds ÷ change-batch seconds (how many times less time a copy takes to catch up)",
            Goal(">=", 20),
            unit="syncs/min",
        ),
        compare(
            syncs,
            ("decoding", "pg_recvlogical receiving the same changes (its start, login and decoding)"),
            ("reread", "reading the whole table again"),
            "re-read seconds ÷ pg_recvlogical seconds (a change reader outside Spark, for scale)",
            unit="syncs/min",
        ),
    ]
    return CaseResult(
        key="changes",
        title="Change streams: a slot's changes against the server's decoding and against re-reading",
        method=[
            __doc__.split("\n\n", 1)[1].replace("\n", " ") if __doc__ else "",
            f"Latency: a `processingTime='1 second'` stream into foreachBatch while a writer commits one "
            f"row every {LATENCY_EVERY * 1000:.0f} ms for {LATENCY_SECONDS:.0f} s; each row's delay is "
            "the moment its batch reached the sink minus its `_commit_timestamp`.",
        ],
        comparisons=comparisons,
        tables=[
            Table(
                "a whole Trigger.AvailableNow run over the round's changes (the query's start included)",
                ["changes", "median (s)", "low (s)", "high (s)"],
                [[changed, round(statistics.median(whole), 3), round(min(whole), 3), round(max(whole), 3)]],
            ),
            Table(
                "commit -> visible in a processingTime='1 second' stream",
                ["rows", "p50 (s)", "p99 (s)", "max (s)"],
                [[latency["rows"], latency["p50"], latency["p99"], latency["max"]]],
            ),
        ],
        data={"latency": latency, "changed": changed, "whole_run_seconds": whole},
    )


def _stream(
    spark: Any, opts: dict[str, str], slot: str, checkpoint: str, starting: str = "snapshot"
) -> float:
    """One Trigger.AvailableNow run of the stream into ``noop``; the seconds its batches with rows took
    (Spark's ``triggerExecution``: planning, reading and the sink, without the query's start)."""
    reader = spark.readStream.format("lakebase").options(**opts).option("dbtable", TABLE)
    df = reader.option("slotName", slot).option("startingPosition", starting).load()
    query = df.writeStream.format("noop").option("checkpointLocation", checkpoint).trigger(availableNow=True)
    started = query.start()
    started.awaitTermination(600)
    if started.exception() is not None:
        raise RuntimeError(f"the change stream failed: {started.exception()}")
    batches = [p for p in started.recentProgress if p["numInputRows"] > 0]
    return sum(p["durationMs"]["triggerExecution"] for p in batches) / 1000


def env_recvlogical(env: Any, slot: str, end: int) -> float:
    """pg_recvlogical over TLS as the user, from ``slot`` to ``end``: its wall time."""
    binary = shutil.which("pg_recvlogical") or _bindir("pg_recvlogical")
    conninfo = env.psycopg_conninfo() + " replication=database"
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own argv
        [binary, "-d", conninfo, "-S", slot, "--start", "-E", lsn_text(end), "-f", "/dev/null", "--no-loop"],
        env=dict(os.environ, PGPASSWORD=env.token()),
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"pg_recvlogical failed: {done.stderr[-2000:]}")
    return seconds


def _bindir(name: str) -> str:
    from lakebase_spark.testing.pgbin import find_bindir

    return str(find_bindir() / name)


def _drop(env: Any, slot: str) -> None:
    with env.admin() as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


LATENCY_SECONDS = 10.0
LATENCY_EVERY = 0.05


def _latency(ctx: Context, opts: dict[str, str], workdir: str) -> dict[str, Any]:
    """Commit -> visible delays under a steady load of one committed row every LATENCY_EVERY seconds."""
    env = ctx.env
    slot = f"bench_changes_latency_{uuid.uuid4().hex[:6]}"
    delays: list[float] = []
    seconds = 3.0 if ctx.cfg.smoke else LATENCY_SECONDS

    def sink(batch: Any, _: int) -> None:
        now = time.time()
        committed = batch.where("_change_type != 'update_preimage'").select(
            F.col("_commit_timestamp").cast("double")
        )
        delays.extend(now - seconds for (seconds,) in committed.collect())

    reader = env.spark.readStream.format("lakebase").options(**opts).option("dbtable", TABLE)
    df = reader.option("slotName", slot).option("startingPosition", "latest").load()
    query = (
        df.writeStream.foreachBatch(sink).option("checkpointLocation", os.path.join(workdir, slot))
        .trigger(processingTime="1 second").start()
    )  # fmt: skip
    stop = threading.Event()

    def write() -> None:
        with env.admin() as conn:
            n = 0
            while not stop.is_set():
                n += 1
                conn.execute(f"UPDATE {TABLE} SET amount = amount + 1 WHERE id = %s", (1 + n % 1000,))  # noqa: S608
                stop.wait(LATENCY_EVERY)

    deadline = time.monotonic() + 60
    while query.lastProgress is None and time.monotonic() < deadline:  # the slot comes with batch 0
        time.sleep(0.1)
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    time.sleep(seconds)
    stop.set()
    writer.join(30)
    time.sleep(2.5)  # the last changes' batch
    query.stop()
    _drop(env, slot)
    if not delays:
        raise RuntimeError("the latency stream saw no change")
    ordered = sorted(delays)
    return {
        "rows": len(ordered),
        "p50": round(statistics.median(ordered), 3),
        "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3),
        "max": round(ordered[-1], 3),
    }
