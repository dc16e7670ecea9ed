"""Executors in separate JVMs (``local-cluster``): each asks the driver's broker for its token."""

from __future__ import annotations

import pytest
from psycopg import sql

from ..conftest import DATABASE, ENDPOINT
from ..jobs import run_job

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]


def test_read_and_write_with_executors_in_their_own_jvms(emulator, admin, tmp_path) -> None:
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    admin.execute("DROP TABLE IF EXISTS public.cluster_src, public.cluster_dst")
    admin.execute(
        "CREATE TABLE public.cluster_src AS "
        "SELECT g::bigint AS id, md5(g::text) AS v FROM generate_series(0, 9999) g"
    )
    result, output = run_job(
        "cluster_job.py",
        [emulator.host, ENDPOINT, DATABASE, str(tmp_path)],
        env={"LAKEBASE_TEST_PAT": emulator.pat},
        timeout=300,
    )
    assert result["executors"] == 2
    assert result["partitions"] == 4
    assert result["sum"] == sum(range(10000))
    # The driver resolved the schema, and each executor JVM asked the broker for its own token:
    # only one mint, but at least three JVMs served.
    assert result["tokens_served"] >= 3
    assert result["mints"] == 1
    copied = admin.execute(
        "SELECT count(*), sum(id) FROM public.cluster_dst d JOIN public.cluster_src s USING (id, v)"
    ).fetchone()
    assert copied == (10000, sum(range(10000)))
    assert emulator.pat not in output
    # The Spark UI (REST API and HTML) and the event log show the job but no token or broker secret.
    token, secret = result["secrets"]
    assert result["ui_sql_shows_jdbc"]
    assert all(size > 100 for size in result["ui_pages"].values()), result["ui_pages"]
    assert result["ui_leaks"] == []
    event_log = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    assert "SparkListenerSQLExecutionStart" in event_log
    assert "lakebase.broker.url" in event_log  # the options are there, so the search below means something
    assert token not in event_log
    assert secret not in event_log
    assert token not in output
