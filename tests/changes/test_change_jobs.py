"""Change streams exactly once where it is hard: the driver killed when a batch reaches the sink (offsets
written, nothing logged), and right after the sink logged it (before Spark recorded it done); Postgres
crashing mid-stream (its slots go back to their last checkpoint); an executor lost while the snapshot is
read; on ``local-cluster``. The same job runs on a Connect server with no jar (test_remote). Each: the
sink's log, replayed, equals the source table, and no change is delivered in two batches."""

from __future__ import annotations

import os
import subprocess
import threading
import time

import psycopg
import pyspark
import pytest

from ..conftest import DATABASE
from .streams import Mover, change_job, check_log, cmdline, descendants, make_accounts

pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.faults,
    pytest.mark.lane2,
    pytest.mark.skipif(
        tuple(int(p) for p in pyspark.__version__.split(".")[:2]) < (4, 2), reason="Spark 4.2+"
    ),
]


def test_the_driver_killed_at_each_point_and_a_postgres_crash_lose_and_repeat_nothing(
    emulator, tmp_path
) -> None:
    conninfo, table, slot = emulator.admin_conninfo(DATABASE), "public.cj_accounts", "cj_kills"
    make_accounts(conninfo, table, emulator.user_name)
    mover = Mover(conninfo, table)
    mover.start()
    job = ("--master", "local[2,4]")  # the driver's own process is what dies here
    try:
        change_job(emulator, tmp_path, *job, table, slot, "kill-before:1")
        change_job(emulator, tmp_path, *job, table, slot, "kill-after:2")

        def crash_when_streaming() -> None:
            signal = tmp_path / "streaming"
            signal.unlink(missing_ok=True)
            deadline = time.monotonic() + 300
            while not signal.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2)  # a few batches in
            emulator.faults.cold_start(down_seconds=0.5, starting_seconds=0.5, crash=True).result(60)

        crasher = threading.Thread(target=crash_when_streaming)
        crasher.start()
        # The query may fail on the crash (a dropped connection), or ride it out; either way the next run
        # goes on from the checkpoint.
        change_job(emulator, tmp_path, *job, table, slot, "run:6", must_pass=False)
        crasher.join(120)
    finally:
        mover.stopping.set()
        mover.join(30)
    assert mover.error is None
    change_job(emulator, tmp_path, *job, table, slot, "drain")
    seen = check_log(conninfo, table)
    assert seen["batches"] >= 4
    assert mover.transactions > 300
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def test_an_executor_lost_while_the_snapshot_is_read_loses_and_repeats_nothing(emulator, tmp_path) -> None:
    """An executor JVM killed while its tasks read the snapshot (and log it; each pauses now and then):
    the tasks run again on the other executor, in the same snapshot, still held by the driver."""
    conninfo, table, slot = emulator.admin_conninfo(DATABASE), "public.cj_snapshot", "cj_executor"
    accounts = 60_000
    make_accounts(conninfo, table, emulator.user_name, accounts=accounts)
    killed: list[int] = []

    def kill_an_executor_mid_snapshot(job: subprocess.Popen[str]) -> None:
        signal = tmp_path / "streaming"
        deadline = time.monotonic() + 300
        while not signal.exists() and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.1)
        time.sleep(2.5)  # the first wave of snapshot tasks is reading (each pauses 2 s over its rows)
        executors = [p for p in descendants(job.pid) if b"CoarseGrainedExecutorBackend" in cmdline(p)]
        if executors:
            os.kill(executors[0], 9)
            killed.append(executors[0])

    change_job(
        emulator, tmp_path, "--master", "local-cluster[2,1,1024]", table, slot, "slow-run:0",
        during=kill_an_executor_mid_snapshot,
    )  # fmt: skip
    assert killed  # an executor really died while batch 0 (the snapshot) ran
    seen = check_log(conninfo, table, total=accounts * 1000)
    assert seen["changes"] == 0  # nothing changed: the snapshot alone, each row once
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}_log").fetchone() == (
            accounts,
            accounts,
        )
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
