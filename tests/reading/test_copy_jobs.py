"""The COPY reader in Sparks of their own (jobs/copy_read_job.py): every type against the JDBC reader in
a JVM far from UTC (a half-hour offset, DST gaps and overlaps, local mean time before 1935), and an
executor JVM killed mid-read on ``local-cluster``: every row once."""

from __future__ import annotations

import os
import time

import pytest
from psycopg import sql

from ..changes.streams import cmdline, descendants
from ..conftest import DATABASE, ENDPOINT
from ..copy_reads import DECODED, make_table
from ..jobs import run_job

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e, pytest.mark.faults, pytest.mark.lane2]
ZONE = "America/St_Johns"


@pytest.fixture
def db(admin, emulator):
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    return admin


def test_every_type_reads_as_the_jdbc_reader_reads_it_in_a_jvm_far_from_utc(emulator, db, tmp_path) -> None:
    make_table(db, "cr_zone", DECODED)
    env = {"LAKEBASE_TEST_PAT": emulator.pat, "TZ": ZONE}
    result, _ = run_job(
        "copy_read_job.py", ["zone", emulator.host, ENDPOINT, DATABASE, "public.cr_zone", ZONE], env=env
    )
    assert result["zone"] == ZONE
    assert result["copy"]
    assert result["differences"] == []


def test_an_executor_killed_mid_read_loses_and_repeats_no_row(emulator, db, tmp_path) -> None:
    """Reads are slowed in Postgres by a row-security policy that pauses every 400th row, so the kill
    lands while the first tasks stream their COPY; Spark runs them again on the other executor."""
    rows = 40_000
    db.execute("DROP TABLE IF EXISTS cr_kill")
    db.execute(
        f"CREATE TABLE cr_kill AS SELECT g::bigint AS id, md5(g::text) AS v FROM generate_series(1, {rows}) g"
    )
    db.execute(
        "CREATE OR REPLACE FUNCTION cr_slow(id bigint) RETURNS boolean LANGUAGE sql AS"
        " $$ SELECT CASE WHEN id % 400 = 0 THEN (SELECT true FROM pg_sleep(0.1)) ELSE true END $$"
    )
    db.execute("ALTER TABLE cr_kill ENABLE ROW LEVEL SECURITY")
    db.execute("ALTER TABLE cr_kill FORCE ROW LEVEL SECURITY")
    db.execute("CREATE POLICY cr_slowly ON cr_kill USING (cr_slow(id))")
    killed: list[int] = []

    def kill_an_executor(signal) -> None:
        deadline = time.monotonic() + 300
        while not signal.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2.5)  # the first two partitions are streaming (each ~2.5 s of pauses)
        executors = [p for p in descendants(os.getpid()) if b"CoarseGrainedExecutorBackend" in cmdline(p)]
        if executors:
            os.kill(executors[0], 9)
            killed.append(executors[0])

    env = {"LAKEBASE_TEST_PAT": emulator.pat}
    result, _ = run_job(
        "copy_read_job.py",
        ["kill", emulator.host, ENDPOINT, DATABASE, "public.cr_kill"],
        env=env,
        signal=tmp_path / "reading",
        during=kill_an_executor,
    )
    assert killed  # an executor really died mid-read
    assert result["copy"]
    assert (result["rows"], result["distinct"], result["sum"]) == (rows, rows, rows * (rows + 1) // 2)
