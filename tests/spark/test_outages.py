"""Spark reads through outages: Postgres restarted mid-read, a compute at its connection limit (53300);
and a refusal, which is not an outage: a permission revoked mid-read fails the job at once.

Each runs ``jobs/read_job.py`` in a Spark of its own (``local[N,F]`` lets Spark retry a task, and
``local[8]`` needs its own session), against a real Postgres that really restarts or really refuses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from lakebase_spark.testing import LakebaseEmulator

from ..conftest import DATABASE, ENDPOINT
from ..jobs import run_job

# The first two in lane 2, the others in lane 1: they balance scripts/test's lanes.
pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.faults]


CAN_USE = "User does not have CAN_USE permission on the project"


def wait_for_reads(emulator: LakebaseEmulator, signal: Path, deadline: float) -> int:
    """Wait until the job signals that its read started and a partition's query runs in Postgres."""
    while not signal.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
        reading = 0
        while not reading and time.monotonic() < deadline:
            reading = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep%'"
                " AND pid <> pg_backend_pid()"
            ).fetchone()[0]
            time.sleep(0.02)
    return reading


def seed(emulator: LakebaseEmulator, table: str, rows: int) -> None:
    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, v text)")
        conn.execute(f"INSERT INTO {table} SELECT g, 'v' || g FROM generate_series(0, {rows - 1}) g")
        conn.execute(f'GRANT SELECT ON {table} TO "{emulator.user_name}"')


def run_read(
    emulator: LakebaseEmulator,
    tmp_path: Path,
    master: str,
    table: str,
    rows: int,
    partitions: int,
    sleep: float,
    *options: str,
    during: Callable[[Path], None] | None = None,
) -> dict:
    args = [master, emulator.host, ENDPOINT, DATABASE, table, str(rows), str(partitions), str(sleep)]
    env = {"LAKEBASE_TEST_PAT": emulator.pat}
    result, _ = run_job("read_job.py", [*args, *options], env=env, signal=tmp_path / "reading", during=during)
    print("read job:", master, json.dumps(result)[:300])  # figures for the notes (pytest -s)
    return result


@pytest.mark.lane2
def test_a_read_survives_a_postgres_restart_in_the_middle(emulator, tmp_path) -> None:
    rows, table = 40_000, "public.outage_restart"
    seed(emulator, table, rows)
    restarted: list[int] = []

    def restart_when_reading(signal: Path) -> None:
        restarted.append(wait_for_reads(emulator, signal, time.monotonic() + 300))
        # Down 1 s, 57P03 for 1 s, then back: the cut tasks fail and Spark retries them; their logins
        # wait out the restart.
        emulator.faults.cold_start(down_seconds=1.0, starting_seconds=1.0).result(timeout=120)

    result = run_read(emulator, tmp_path, "local[2,4]", table, rows, 8, 1.0, during=restart_when_reading)
    assert restarted
    assert restarted[0] >= 1  # the restart cut reads in flight
    assert result.get("error") is None
    assert result["rows"] == rows  # and every row is there, compared one by one with chispa in the job
    assert result["cold_start_retries"] >= 1


@pytest.fixture(scope="module")
def small_compute() -> Iterator[LakebaseEmulator]:
    """A compute with room for 7 logins (10 connections, 3 reserved for the superuser)."""
    with LakebaseEmulator(databases=(DATABASE,), max_connections=10) as emu:
        emu.create_endpoint(ENDPOINT)
        yield emu


@pytest.mark.lane2
def test_a_32_partition_read_on_8_cores_queues_for_a_compute_of_10_connections(
    small_compute, tmp_path
) -> None:
    rows, table = 32_000, "public.outage_limit"
    seed(small_compute, table, rows)
    result = run_read(small_compute, tmp_path, "local[8]", table, rows, 32, 0.5)
    assert result.get("error") is None
    assert result["rows"] == rows
    assert result["connection_limit_retries"] >= 1  # the limit was really hit, and waited out
    assert result["logins"] >= 32


def test_with_the_connection_limit_retry_off_the_error_names_the_limit_and_the_fix(
    small_compute, tmp_path
) -> None:
    rows, table = 8_000, "public.outage_limit_off"
    seed(small_compute, table, rows)
    result = run_read(
        small_compute, tmp_path, "local[8]", table, rows, 32, 0.5, "lakebase.connlimit.timeout.ms=0"
    )
    error = result["error"]
    assert "SQLSTATE 53300" in error
    assert "max_connections" in error
    assert "numPartitions" in error
    assert "lakebase.connlimit.timeout.ms" in error


def test_a_permission_revoked_mid_read_fails_every_task_at_once_with_the_fix_first(
    emulator, tmp_path
) -> None:
    """Tokens live 2 s; once the read runs, every mint answers 403. Executors in their own JVMs, Spark
    retrying each task 4 times: the job fails within seconds, not after each JVM retried a 502 for the
    broker's whole timeout (a 22-minute hang when a refresh had failed before the refusal)."""
    rows, table = 16_000, "public.outage_refused"
    seed(emulator, table, rows)
    refused_at: list[float] = []

    def revoke_when_reading(signal: Path) -> None:
        assert wait_for_reads(emulator, signal, time.monotonic() + 300)
        emulator.faults.fail_mints(1_000_000, status=403, message=CAN_USE)
        refused_at.append(time.monotonic())

    old_ttl = emulator.token_ttl
    emulator.token_ttl = 2
    try:
        result = run_read(
            emulator,
            tmp_path,
            "local-cluster[2,1,1024]",
            table,
            rows,
            16,
            0.5,
            "spark.task.maxFailures=4",
            "spark.executor.memory=768m",
            during=revoke_when_reading,
        )
        failed_at = time.monotonic()
    finally:
        emulator.token_ttl = old_ttl
        emulator.faults.clear()
    error = result.get("error")
    assert error, result
    print(
        "refusal: failed after",
        round(failed_at - refused_at[0], 1),
        "s; read",
        round(result["seconds"], 1),
        "s",
    )
    print(error[:2000])
    assert refused_at
    assert failed_at - refused_at[0] < 60  # the read failed within a minute of the refusal
    assert result["seconds"] < 60
    # Our part of the message starts with the fix (Spark puts its own prefix and trace around it).
    assert "lakebase: To fix: grant the principal CAN USE" in error, error[:3000]
    assert CAN_USE in error
    assert "failing for" not in error  # a refusal, not reported as an outage
