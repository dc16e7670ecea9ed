"""Catalog writes exactly once when Spark retries tasks after their commit, loses executors, or
retries a task failing upstream of the writer (``local-cluster``), in a session built with
``configure(builder, catalogs=...)``; and the broker's secret and tokens are in none of what the job
showed, logged or wrote to its event log."""

from __future__ import annotations

import pytest

from ..conftest import DATABASE, ENDPOINT
from ..jobs import run_job

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.faults, pytest.mark.lane2]

ROWS = 20_000


def test_catalog_writes_exactly_once_under_retries_and_lost_executors(emulator, tmp_path) -> None:
    events = tmp_path / "events"
    events.mkdir()
    env = {"LAKEBASE_TEST_PAT": emulator.pat, "LAKEBASE_TEST_ADMIN": emulator.admin_conninfo(DATABASE)}
    args = ["local-cluster[2,1,1024]", emulator.host, ENDPOINT, DATABASE, str(events)]
    result, output = run_job("catalog_job.py", args, env=env, timeout=900)
    event_log = "".join(p.read_text(errors="replace") for p in events.rglob("*") if p.is_file())
    # INSERT INTO: every row once, the row from before kept. Retried after commit: each partition's retry
    # found its marker. An executor JVM halted right after committing partition 1: its rerun did too.
    assert result["lb"] == [ROWS + 1, ROWS + 1, 1]
    assert result["lb_retry"] == [ROWS + 1, ROWS + 1, 1]
    assert result["lb_halt"] == [ROWS + 1, ROWS + 1, 1]
    assert "injected fault fail-after-commit" in event_log + output  # the faults really fired
    assert event_log.count("SparkListenerExecutorRemoved") >= 1  # an executor really died
    # A UDF failing upstream of the writer. On the first attempt: Spark retries, every row once. On every
    # attempt the statement fails: a plain INSERT keeps the partitions it committed, each once (never the
    # failing one); atomic INSERT and INSERT OVERWRITE leave the table as it was.
    assert result["udf_first"] == {"held": [ROWS + 1, ROWS + 1, 1], "error": None}
    every = result["udf_every"]
    assert every["error"] == "injected upstream failure"
    count, distinct, old = every["held"]
    assert count == distinct
    assert old == 1
    assert count - 1 in (0, 5_000, 10_000, 15_000)
    for name in ("udf_every_atomic", "udf_every_overwrite"):
        assert result[name] == {"held": [1, 1, 1], "error": "injected upstream failure"}, name
    # INSERT OVERWRITE (its tasks failing after their commits too) replaced table cat_lb whole.
    assert result["read"] == [ROWS, ROWS]
    assert "lakebase COPY" in output  # the plans were printed
    token, secret = result["secrets"]
    for where in (event_log, output):
        assert token not in where
        assert secret not in where
