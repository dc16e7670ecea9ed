"""Exactly once under Spark's retries: tasks failing right after their commit, before it, and executor
JVMs killed right after it (``local-cluster``). Every row is counted, and every key, afterwards."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from ..conftest import DATABASE, ENDPOINT
from ..jobs import run_job

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.faults]

ROWS = 20_000


def run_writes(emulator, tmp_path: Path, master: str, *scenarios: str, during=None) -> tuple[dict, str]:
    """Run write_job.py; ``during(signal_file)`` runs meanwhile (e.g. to restart Postgres mid-write)."""
    events = tmp_path / "events"
    events.mkdir()
    env = {"LAKEBASE_TEST_PAT": emulator.pat, "LAKEBASE_TEST_ADMIN": emulator.admin_conninfo(DATABASE)}
    args = [master, emulator.host, ENDPOINT, DATABASE, str(events), *scenarios]
    result, output = run_job("write_job.py", args, env=env, signal=tmp_path / "writing", during=during)
    event_log = "".join(p.read_text(errors="replace") for p in events.rglob("*") if p.is_file())
    return result, event_log + output


def test_retried_tasks_write_every_row_exactly_once(emulator, tmp_path) -> None:
    scenarios = ("fail-after-commit", "fail-before-commit", "upsert-fail-after-commit")
    result, logs = run_writes(emulator, tmp_path, "local[2,4]", *scenarios)
    for scenario in scenarios:
        del result[scenario]["window"]
    # Every partition's first attempt failed after its rows were committed; Spark ran each again.
    assert result["fail-after-commit"] == {"rows": ROWS, "distinct": ROWS, "old": 0, "reported": ROWS}
    # Two partitions failed before committing; their retries wrote them once.
    assert result["fail-before-commit"] == {"rows": ROWS, "distinct": ROWS, "old": 0, "reported": ROWS}
    # Upsert stages exactly once too: half the keys updated, half inserted, none twice.
    assert result["upsert-fail-after-commit"] == {"rows": ROWS, "distinct": ROWS, "old": 0, "reported": ROWS}
    assert "injected fault fail-after-commit" in logs  # the faults really fired
    token, secret = result["secrets"]
    assert token not in logs
    assert secret not in logs


def test_executors_killed_mid_write_lose_and_repeat_nothing(emulator, tmp_path) -> None:
    scenarios = ("halt-after-commit", "halt-mid-copy")
    result, logs = run_writes(emulator, tmp_path, "local-cluster[2,1,1024]", *scenarios)
    for scenario in scenarios:
        del result[scenario]["window"]
    # An executor JVM halted right after committing partition 1: its retry finds the marker.
    assert result["halt-after-commit"] == {"rows": ROWS, "distinct": ROWS, "old": 0, "reported": ROWS}
    # One halted with partition 2's COPY half sent: Postgres rolled it back, the retry wrote it once.
    assert result["halt-mid-copy"] == {"rows": ROWS, "distinct": ROWS, "old": 0, "reported": ROWS}
    assert logs.count("SparkListenerExecutorRemoved") >= 2  # both executors really died
    token, secret = result["secrets"]
    assert token not in logs
    assert secret not in logs


def test_postgres_restarted_mid_write_loses_and_repeats_nothing(emulator, tmp_path) -> None:
    restarted: list[int] = []

    def restart_when_copying(signal: Path) -> None:
        deadline = time.monotonic() + 300
        while not signal.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
            while time.monotonic() < deadline:
                # A COPY with rows already in (pg_stat_progress_copy, Postgres 14+): it is mid-stream.
                copying = conn.execute(
                    "SELECT count(*) FROM pg_stat_progress_copy WHERE command = 'COPY FROM' "
                    "AND tuples_processed > 0"
                ).fetchone()[0]
                if copying:
                    break
                time.sleep(0.02)
        restarted.append(copying)
        # Postgres goes down (fast shutdown: open transactions rolled back, connections dropped), refuses
        # logins for 1 s, answers 57P03 for 1 s, then is back. The tasks whose COPY was cut fail; Spark
        # retries them, and their logins wait out the cold start.
        emulator.faults.cold_start(down_seconds=1.0, starting_seconds=1.0).result(timeout=120)

    result, logs = run_writes(emulator, tmp_path, "local[2,4]", "restart", during=restart_when_copying)
    rows = 3_000_000
    del result["restart"]["window"]
    assert restarted == [restarted[0]]
    assert restarted[0] >= 1  # the restart cut at least one COPY in flight
    assert result["restart"] == {"rows": rows, "distinct": rows, "old": 0, "reported": rows}
    assert '"Reason":"ExceptionFailure"' in logs  # and Spark saw those tasks fail, then retried them
