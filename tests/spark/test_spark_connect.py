"""Spark Connect sessions: the helpers, the COPY writer and the sharded reader without a SparkContext.

Databricks standard access mode, serverless notebooks and Databricks Connect give Python a Spark
Connect session. Two set-ups run here, each in its own process: a local Connect session
(``remote("local[2]")``, jars from ``configure()``), and a Connect server started by pyspark's own
``start-connect-server.sh`` with executors in separate JVMs (``local-cluster``) and ``--jars``.
"""

from __future__ import annotations

import socket

import pytest

import lakebase_spark

from ..conftest import DATABASE, ENDPOINT
from ..connect_servers import event_log_conf, started_connect_server
from ..jobs import run_job

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.connect]

SHARDS = ("connect_a", "connect_b", "connect_c")
ROWS = 10_000


def connect_job(emulator, remote: str, **extra_env: str) -> dict:
    for name in SHARDS:
        emulator.create_database(name)
    env = {"LAKEBASE_TEST_PAT": emulator.pat, **extra_env}
    return run_job("connect_job.py", [remote, emulator.host, ENDPOINT, DATABASE, *SHARDS], env=env)[0]


def check(result: dict) -> None:
    assert result["connect"] is True
    assert result["write"] == {"reported": ROWS, "count": ROWS, "sum": sum(range(ROWS))}
    # A failed append: no status tracker on Connect, so the count is a lower bound, and the query it names
    # counts what the table holds beyond the overwrite's rows (partition 3 failed; 0, 1 and 2 committed).
    failed = result["failed_append"]
    assert failed["lower_bound"] is True
    assert failed["query"] == [3, 7_500]
    assert failed["table"] == ROWS + 7_500
    sharded = result["sharded"]
    assert sum(sharded["written"].values()) == ROWS
    assert sharded["read"] == sharded["written"]
    assert sharded["sum"] == sum(range(ROWS))
    assert result["catalog"] == [2500, 2500, 2 * sum(range(2500)), True]
    assert "Spark Connect session" in result["provider_stats"]
    assert result["stats"]["mints"] == 1
    assert result["broker_stopped_with_session"] is True


def test_a_local_connect_session(emulator) -> None:
    result = connect_job(emulator, "local[2]")
    check(result)
    assert result["broker_url"].startswith("http://127.0.0.1:")  # local master: loopback


def test_a_connect_client_whose_driver_is_elsewhere_is_told_what_works(emulator) -> None:
    result = connect_job(emulator, "local[2]", LAKEBASE_TEST_FOREIGN_DRIVER="1")
    assert result["connect"] is True
    message = result["refused"]
    assert "executors cannot reach a token broker started here" in message
    assert "a notebook on the cluster" in message


def test_local_addresses_are_told_from_foreign_ones() -> None:
    from lakebase_spark.sessions import _is_local_address

    assert _is_local_address("127.0.0.1")
    assert _is_local_address("localhost")
    assert _is_local_address(socket.gethostname())
    assert not _is_local_address("203.0.113.7")  # TEST-NET-3: documentation only, never configured
    assert not _is_local_address("no-such-host.invalid")


def leaked_lines(text: str, secret: str) -> str:
    """The log lines around each place the secret appears, with the secret masked: what to fix."""
    lines = text.splitlines()
    hits = [i for i, line in enumerate(lines) if secret in line]
    shown = ["\n".join(lines[max(0, i - 12) : i + 2]) for i in hits[:3]]
    return "the secret is in the server log here:\n" + "\n---\n".join(shown).replace(secret, "<SECRET>")


@pytest.fixture
def connect_server(tmp_path):
    """pyspark's start-connect-server.sh, with the provider jar and the driver: executors in two JVMs."""
    jars = [lakebase_spark.jar_path(), lakebase_spark.postgres_driver_jar()]
    conf = event_log_conf(tmp_path / "events")
    with started_connect_server(tmp_path, jars, *conf) as remote:
        yield remote


def test_a_connect_server_with_executors_in_their_own_jvms(emulator, connect_server, tmp_path) -> None:
    result = connect_job(emulator, connect_server)
    check(result)
    # The broker's secret travels in the JDBC options: not into the server's logs or its event log,
    # where Spark Connect records each operation's plan (what the Connect tab of Spark's UI shows).
    secret = result["broker_secret"]
    assert len(secret) > 20
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*") if p.is_file())
    events = "".join(p.read_text(errors="replace") for p in (tmp_path / "events").rglob("*") if p.is_file())
    assert "SparkListenerConnectOperationStarted" in events
    assert "lakebase.broker.url" in events  # the options are there...
    assert "lakebase.broker.secret.file" in events  # ...naming the session file that holds the secret
    assert secret not in events  # ...the secret's value is not
    assert secret not in logs, leaked_lines(logs, secret)
    # local-cluster runs every JVM on this machine: loopback reaches them all (a real cluster's master
    # would make the broker bind the driver's address, over TLS).
    assert result["broker_url"].startswith("http://127.0.0.1:")
    assert result["stats"]["jvms"] >= 2  # the executor JVMs fetched tokens from it


def test_configure_refuses_a_remote_connect_builder() -> None:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote("sc://example.invalid:15002")
    with pytest.raises(lakebase_spark.LakebaseSparkError, match=r"start-connect-server\.sh --jars"):
        lakebase_spark.configure(builder)
