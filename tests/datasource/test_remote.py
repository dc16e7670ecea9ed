"""The jar-free path where it exists for: a Spark Connect server with no jar and no JDBC driver, whose
executors are separate processes (``local-cluster``), and a client whose driver counts as unreachable
(Databricks Connect from a laptop, serverless): the token travels with the job.

Every write mode lands exactly once, a task that fails midway through its COPY is retried without a
duplicate, tasks failing upstream of the writer commit nothing of their partition (writing/test_upstream's
job), reruns by write id write nothing twice; the token is in no plan, log or event log.
"""

from __future__ import annotations

import pyspark
import pytest
from psycopg import sql

from ..changes.streams import Mover, change_job, check_log, make_accounts
from ..conftest import DATABASE, ENDPOINT
from ..connect_servers import event_log_conf, started_connect_server
from ..jobs import run_job
from ..upstream import check_upstream, run_upstream_job

pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.connect,
    pytest.mark.lane2,
    pytest.mark.skipif(int(pyspark.__version__.split(".")[0]) < 4, reason="Python data sources are Spark 4+"),
]

ROWS = 10_000


def test_a_connect_server_with_no_jar_reads_and_writes_exactly(emulator, admin, tmp_path) -> None:
    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    admin.execute("DROP TABLE IF EXISTS public.jf_rows")
    admin.execute("CREATE TABLE public.jf_rows (id bigint PRIMARY KEY, v text)")
    admin.execute("DROP TABLE IF EXISTS public.jf_stream")
    shards = ["jf_shard_a", "jf_shard_b"]
    for name in shards:
        emulator.create_database(name)
    events = tmp_path / "events"
    conf = event_log_conf(events)
    with started_connect_server(tmp_path, [], *conf) as remote:
        result, output = run_job(
            "jarfree_job.py",
            [remote, emulator.host, ENDPOINT, DATABASE, str(tmp_path), *shards],
            env={"LAKEBASE_TEST_PAT": emulator.pat},
            timeout=900,
        )
        # Tasks failing upstream of the writer, every mode and the stream writer (no jar: no JVM writer)
        upstream = run_upstream_job(emulator, tmp_path, "--remote", remote)
        # A change stream while money moves between accounts, then drained (Trigger.AvailableNow)
        conninfo, accounts = emulator.admin_conninfo(DATABASE), "public.jf_accounts"
        make_accounts(conninfo, accounts, emulator.user_name)
        mover = Mover(conninfo, accounts)
        mover.start()
        try:
            change_job(emulator, tmp_path / "changes", "--remote", remote, accounts, "jf_changes", "run:4")
        finally:
            mover.stopping.set()
            mover.join(30)
        change_job(emulator, tmp_path / "changes", "--remote", remote, accounts, "jf_changes", "drain")
    check_upstream(upstream, jvm=False)
    assert mover.error is None
    assert check_log(conninfo, accounts)["batches"] >= 4
    admin.execute("SELECT pg_drop_replication_slot('jf_changes')")
    assert result["connect"] is True
    assert result["credentials"] == "token"  # the broker counts as unreachable
    assert result["overwrite"] == [ROWS, ROWS, sum(range(ROWS))]
    every = [2 * ROWS, 2 * ROWS, sum(range(2 * ROWS))]
    assert result["append_retried"] == every  # the failed attempt's half partition is gone
    assert result["append_rerun"] == every
    assert result["upsert"] == every
    assert result["upserted"] == 1_000
    assert result["pushed_query"] == 100
    attempts = admin.execute(
        "SELECT part, attempt FROM public.lakebase_spark_commits "
        "WHERE write_id = 'jf-append-retried' AND part >= 0 ORDER BY part"
    ).fetchall()
    assert attempts == [(0, 0), (1, 0), (2, 1), (3, 0)]  # partition 2 committed by its second attempt
    pushed, kept = result["pushdown"]
    assert pushed == kept == list(range(100, 200))
    # one snapshot read by every partition on the executors: the 50 rows appended later are not in it
    assert result["consistent"] == {"before": every[:2], "after": every[:2], "now": 2 * ROWS + 50}
    assert result["sharded"] == {
        "per_shard": {"jf_shard_a": 3000, "jf_shard_b": 2000},
        "total": [5000, 5000, sum(range(5000))],
    }
    stream = result["stream"]
    assert stream["replayed"] == 2
    assert stream["batches"] == [0, 1, 2, 3, 4]  # the forgotten batch 2 ran again, then 3 and 4
    assert stream["seen"] == [500, 500, sum(range(500))]
    stream_done = admin.execute(
        "SELECT count(*) FROM public.lakebase_spark_commits WHERE part = -1 AND write_id LIKE 'stream/%' "
        """AND target = '"public"."jf_stream"'"""
    ).fetchone()[0]
    assert stream_done == 5
    assert "60 minutes" in result["late"]
    assert "password role" in result["late"]
    assert "jf_missing" in result["missing"]

    token = result["token"]
    assert token
    assert len(token) > 20
    assert "JarFreeUnavailable" not in output
    assert token not in result["explain"]
    assert "lakebase" in result["explain"].lower()  # the plans are there, without the token
    assert token not in result["late"]
    assert token not in result["missing"]
    assert token not in output
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file())
    assert "Connect" in logs
    assert token not in logs
    event_text = "".join(p.read_text(errors="replace") for p in events.rglob("*") if p.is_file())
    assert "SparkListenerSQLExecutionStart" in event_text  # the plans Spark's UI shows
    assert token not in event_text
