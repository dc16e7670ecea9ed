"""Change streams exactly once where it is hard: the driver killed when a batch reaches the sink (offsets
written, nothing logged), and right after the sink logged it (before Spark recorded it done); Postgres
crashing mid-stream (its slots go back to their last checkpoint); an executor lost while the snapshot is
read; on ``local-cluster``. The same job runs on a Connect server with no jar (test_remote). Each: the
sink's log, replayed, equals the source table, and no change is delivered in two batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pyspark
import pytest

from ..conftest import DATABASE, ENDPOINT
from ..jobs import HERE
from .streams import TOTAL, Mover, make_accounts, table_rows

pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.faults,
    pytest.mark.lane2,
    pytest.mark.skipif(
        tuple(int(p) for p in pyspark.__version__.split(".")[:2]) < (4, 2), reason="Spark 4.2+"
    ),
]


def change_job(
    emulator, workdir: Path, how: str, where: str, table: str, slot: str, action: str, *,
    must_pass: bool = True, during: Callable[[subprocess.Popen[str]], None] | None = None,
) -> int:  # fmt: skip
    """Run jobs/change_job.py (``during(job)`` meanwhile); its exit code (-9: killed as asked). A run that
    should finish must."""
    workdir.mkdir(exist_ok=True)
    env = dict(os.environ, LAKEBASE_TEST_PAT=emulator.pat, PYSPARK_PYTHON=sys.executable)
    args = [how, where, emulator.host, ENDPOINT, DATABASE, str(workdir), table, slot, action]
    job = subprocess.Popen(
        [sys.executable, str(HERE / "change_job.py"), *args], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        if during is not None:
            during(job)
        stdout, stderr = job.communicate(timeout=900)
    finally:
        job.kill()
    if action.startswith("kill"):
        assert job.returncode == -9, stderr[-3000:]
    elif must_pass:
        assert job.returncode == 0, stderr[-3000:]
        result = json.loads(stdout.strip().splitlines()[-1])
        assert result["error"] is None, result["error"]
    return job.returncode


def check_log(conninfo: str, table: str, total: int = TOTAL) -> dict[str, Any]:
    """Replay the sink's log in order; every change once, the total at every batch, the table at the end."""
    with psycopg.connect(conninfo) as conn:
        log = conn.execute(
            f"SELECT _batch, _lsn, _seq, _xid, id, bal, note, _change_type FROM {table}_log "
            "ORDER BY _batch, _lsn, _seq"
        ).fetchall()
    changes = [(lsn, xid, key, bal, note, kind) for batch, lsn, _, xid, key, bal, note, kind in log if xid]
    assert len(changes) == len(set(changes)), "a change was delivered twice"
    rows: dict[int, tuple[int, str | None]] = {}
    totals, batch = [], None
    for number, _, _, _, key, bal, note, kind in log:
        if batch is not None and number != batch:
            totals.append(sum(b for b, _ in rows.values()))
        batch = number
        if kind in ("insert", "update_postimage"):
            rows[key] = (bal, note)
        else:
            rows.pop(key, None)
    totals.append(sum(b for b, _ in rows.values()))
    assert set(totals) == {total}, totals
    assert rows == table_rows(conninfo, table)
    return {"batches": len(totals), "changes": len(changes)}


def test_the_driver_killed_at_each_point_and_a_postgres_crash_lose_and_repeat_nothing(
    emulator, tmp_path
) -> None:
    conninfo, table, slot = emulator.admin_conninfo(DATABASE), "public.cj_accounts", "cj_kills"
    make_accounts(conninfo, table, emulator.user_name)
    mover = Mover(conninfo, table)
    mover.start()
    job = ("--master", "local[2,4]")  # the driver's own process is what dies here
    try:
        change_job(emulator, tmp_path, *job, table, slot, "kill-before:2")
        change_job(emulator, tmp_path, *job, table, slot, "kill-after:4")

        def crash_when_streaming() -> None:
            signal = tmp_path / "streaming"
            signal.unlink(missing_ok=True)
            deadline = time.monotonic() + 300
            while not signal.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(3)  # a few batches in
            emulator.faults.cold_start(down_seconds=0.5, starting_seconds=0.5, crash=True).result(60)

        crasher = threading.Thread(target=crash_when_streaming)
        crasher.start()
        # The query may fail on the crash (a dropped connection), or ride it out; either way the next run
        # goes on from the checkpoint.
        change_job(emulator, tmp_path, *job, table, slot, "run:8", must_pass=False)
        crasher.join(120)
    finally:
        mover.stopping.set()
        mover.join(30)
    assert mover.error is None
    change_job(emulator, tmp_path, *job, table, slot, "drain")
    seen = check_log(conninfo, table)
    assert seen["batches"] >= 6
    assert mover.transactions > 300
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def test_an_executor_lost_while_the_snapshot_is_read_loses_and_repeats_nothing(emulator, tmp_path) -> None:
    """An executor JVM killed while its tasks read the snapshot (and log it): the tasks run again on the
    other, in the same snapshot, still held by the driver; every row once."""
    conninfo, table, slot = emulator.admin_conninfo(DATABASE), "public.cj_snapshot", "cj_executor"
    accounts = 200_000
    make_accounts(conninfo, table, emulator.user_name, accounts=accounts)
    killed: list[int] = []

    def kill_an_executor_while_reading(job: subprocess.Popen[str]) -> None:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and job.poll() is None:
                reading = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE '%cj_snapshot%ctid%' AND pid <> pg_backend_pid()"
                ).fetchone()[0]
                if reading:
                    break
                time.sleep(0.02)
        executors = [p for p in descendants(job.pid) if b"CoarseGrainedExecutorBackend" in cmdline(p)]
        if executors:
            os.kill(executors[0], 9)
            killed.append(executors[0])

    change_job(
        emulator, tmp_path, "--master", "local-cluster[2,1,1024]", table, slot, "run:1",
        during=kill_an_executor_while_reading,
    )  # fmt: skip
    assert killed  # an executor really died mid-snapshot
    change_job(emulator, tmp_path, "--master", "local[2]", table, slot, "drain")
    seen = check_log(conninfo, table, total=accounts * 1000)
    assert seen["changes"] == 0  # nothing changed: only the snapshot, each row once
    with psycopg.connect(conninfo, autocommit=True) as conn:
        assert conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}_log").fetchone() == (
            accounts,
            accounts,
        )
        conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
