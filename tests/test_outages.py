"""Spark reads through outages: Postgres restarted mid-read, a compute at its connection limit (53300).

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

from .conftest import DATABASE, ENDPOINT
from .jobs import run_job

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


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


def test_a_read_survives_a_postgres_restart_in_the_middle(emulator, tmp_path) -> None:
    rows, table = 40_000, "public.outage_restart"
    seed(emulator, table, rows)
    restarted: list[int] = []

    def restart_when_reading(signal: Path) -> None:
        deadline = time.monotonic() + 300
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
        restarted.append(reading)
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
