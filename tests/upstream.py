"""What the upstream-failure job (``jobs/upstream_job.py``) must find: run on ``local-cluster`` by
writing/test_upstream.py and on a Connect server with no jar by datasource/test_remote.py."""

from __future__ import annotations

from typing import Any

from .conftest import DATABASE, ENDPOINT
from .jobs import run_job

ROWS = 20_000
EVERY = [ROWS, ROWS, 0]  # rows, distinct ids, rows left over from before the write


def run_upstream_job(emulator, tmp_path, how: str, where: str) -> dict[str, Any]:
    env = {"LAKEBASE_TEST_PAT": emulator.pat, "LAKEBASE_TEST_ADMIN": emulator.admin_conninfo(DATABASE)}
    args = [how, where, emulator.host, ENDPOINT, DATABASE, str(tmp_path / "upstream")]
    result, _ = run_job("upstream_job.py", args, env=env, timeout=900)
    return result


def check_upstream(result: dict[str, Any], *, jvm: bool) -> None:
    """What the job must find, on either kind of session."""
    # First attempt only: each write succeeds with every row once; partition 2 was committed by a retry.
    for mode in ("append", "overwrite", "upsert"):
        assert result[mode]["error"] is None, mode
        assert result[mode]["held"] == EVERY, mode
    parts = result["append"]["parts"]
    assert [p[0] for p in parts] == [0, 1, 2, 3]
    assert all(rows == ROWS // 4 for _, _, rows in parts)
    assert parts[2][1] >= 1  # the failed attempt's rows were not committed; a retry's were
    # Every attempt: the job fails with the UDF's error; the table holds the other partitions whole (an
    # append) or nothing new (an overwrite); a rerun with the same write id writes exactly the rest.
    failed, rerun = result["append_every"]["failed"], result["append_every"]["rerun"]
    assert "injected upstream failure" in failed["error"]
    assert failed["held"] == [15_000, 15_000, 0]
    assert [p[0] for p in failed["parts"]] == [0, 1, 3]
    assert rerun == {"error": None, "held": EVERY}
    failed, rerun = result["overwrite_every"]["failed"], result["overwrite_every"]["rerun"]
    assert "injected upstream failure" in failed["error"]
    assert failed["held"] == [500, 500, 500]  # unchanged
    assert rerun == {"error": None, "held": EVERY}
    # The stream writer: batch 1 retried, batch 2 failed on every attempt and stopped the query; the
    # restart ran batch 2 again, then batch 3.
    stream = result["stream"]
    assert "injected upstream failure" in stream["stopped"]
    assert stream["after_stop"] == [10_000, 10_000, 0]
    assert stream["restarted"] is None
    assert stream["batches"] == [0, 1, 2, 3]
    assert stream["held"] == EVERY
    if jvm:
        assert result["jvm"] == {"error": None, "held": EVERY}
        failed, rerun = result["jvm_every"]["failed"], result["jvm_every"]["rerun"]
        assert "15000 rows" in failed["error"]
        assert "a Python worker raised RuntimeError: injected upstream failure at id 12500" in failed["error"]
        assert failed["held"] == [15_000, 15_000, 0]
        assert rerun == {"error": None, "held": EVERY}
    assert result["connect"] is not jvm
