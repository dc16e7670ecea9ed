"""Exactly once under Spark's retries: tasks failing right after their commit, before it, and executor
JVMs killed right after it (``local-cluster``). Every row is counted, and every key, afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATABASE, ENDPOINT

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

JOB = Path(__file__).parent / "jobs" / "write_job.py"
ROWS = 20_000


def run_job(emulator, tmp_path: Path, master: str, *scenarios: str) -> tuple[dict, str]:
    env = dict(
        os.environ,
        LAKEBASE_TEST_PAT=emulator.pat,
        LAKEBASE_TEST_ADMIN=emulator.admin_conninfo(DATABASE),
        PYSPARK_PYTHON=sys.executable,
    )
    done = subprocess.run(
        [sys.executable, str(JOB), master, emulator.host, ENDPOINT, DATABASE, str(tmp_path), *scenarios],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    event_log = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    return json.loads(done.stdout.strip().splitlines()[-1]), event_log + done.stderr


def test_retried_tasks_write_every_row_exactly_once(emulator, tmp_path) -> None:
    result, logs = run_job(
        emulator,
        tmp_path,
        "local[2,4]",
        "fail-after-commit",
        "fail-before-commit",
        "upsert-fail-after-commit",
    )
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


def test_executor_killed_after_its_commit_loses_and_repeats_nothing(emulator, tmp_path) -> None:
    result, logs = run_job(emulator, tmp_path, "local-cluster[2,1,1024]", "halt-after-commit")
    assert result["halt-after-commit"] == {"rows": ROWS, "distinct": ROWS, "old": 0, "reported": ROWS}
    assert "ExecutorLost" in logs or "executor lost" in logs.lower() or "SparkListenerExecutorRemoved" in logs
    token, secret = result["secrets"]
    assert token not in logs
    assert secret not in logs
