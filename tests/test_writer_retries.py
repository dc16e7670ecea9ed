"""Exactly once under Spark's retries: tasks failing right after their commit, before it, and executor
JVMs killed right after it (``local-cluster``). Every row is counted, and every key, afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import DATABASE, ENDPOINT

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

JOB = Path(__file__).parent / "jobs" / "write_job.py"
ROWS = 20_000


def run_job(emulator, tmp_path: Path, master: str, *scenarios: str, during=None) -> tuple[dict, str]:
    """Run write_job.py; ``during(signal_file)`` runs meanwhile (e.g. to restart Postgres mid-write)."""
    events = tmp_path / "events"
    events.mkdir()
    signal = tmp_path / "writing"
    env = dict(
        os.environ,
        LAKEBASE_TEST_PAT=emulator.pat,
        LAKEBASE_TEST_ADMIN=emulator.admin_conninfo(DATABASE),
        LAKEBASE_TEST_SIGNAL=str(signal),
        PYSPARK_PYTHON=sys.executable,
    )
    job = subprocess.Popen(
        [sys.executable, str(JOB), master, emulator.host, ENDPOINT, DATABASE, str(events), *scenarios],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if during is not None:
            during(signal)
        stdout, stderr = job.communicate(timeout=600)
    finally:
        job.kill()
    assert job.returncode == 0, stderr[-4000:]
    event_log = "".join(p.read_text(errors="replace") for p in events.rglob("*") if p.is_file())
    return json.loads(stdout.strip().splitlines()[-1]), event_log + stderr


def test_retried_tasks_write_every_row_exactly_once(emulator, tmp_path) -> None:
    scenarios = ("fail-after-commit", "fail-before-commit", "upsert-fail-after-commit")
    result, logs = run_job(emulator, tmp_path, "local[2,4]", *scenarios)
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
    result, logs = run_job(emulator, tmp_path, "local-cluster[2,1,1024]", *scenarios)
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
    restarted: list[float] = []

    def restart_when_writing(signal: Path) -> None:
        deadline = time.monotonic() + 300
        while not signal.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # well into the COPYs
        restarted.append(time.time())
        # Postgres goes down (open connections terminated), refuses logins for 1 s, answers 57P03 for
        # 1 s, then is back: the provider's cold-start retry waits it out, Spark retries the failed tasks.
        emulator.faults.cold_start(down_seconds=1.0, starting_seconds=1.0).result(timeout=120)

    result, logs = run_job(emulator, tmp_path, "local[2,4]", "restart", during=restart_when_writing)
    rows = 3_000_000
    window = result["restart"].pop("window")
    assert window[0] < restarted[0] < window[1], (window, restarted)  # the restart hit the write
    assert result["restart"] == {"rows": rows, "distinct": rows, "old": 0, "reported": rows}
    assert "TaskEndReason" in logs or "ExceptionFailure" in logs  # some tasks failed and were retried
