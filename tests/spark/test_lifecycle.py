"""Token lifecycle through Spark: expiry mid-job, revocation, cold starts, API faults, pinned TLS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest
from psycopg import sql
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from lakebase_spark import BrokerService, EndpointNotFoundError, TokenBroker, lakebase_options, provider_stats

from ..conftest import DATABASE, ENDPOINT
from ..jdbc_reads import partitioned_read

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]

ROWS = 2400


@pytest.fixture(scope="module")
def events(admin_module) -> str:
    admin_module.execute("DROP TABLE IF EXISTS public.events")
    admin_module.execute(
        "CREATE TABLE public.events AS "
        f"SELECT g::bigint AS id, md5(g::text) AS v FROM generate_series(1, {ROWS}) g"
    )
    return "public.events"


@pytest.fixture(scope="module")
def admin_module(emulator) -> Iterator[object]:
    import psycopg

    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
        yield conn


@pytest.fixture
def short_ttl(emulator) -> Iterator[None]:
    old = emulator.token_ttl
    yield
    emulator.token_ttl = old


def slow_read(spark, opts, *, partitions: int, sleep: float):
    """A read whose every partition query first sleeps, so partitions start in waves over time."""
    query = f"(SELECT e.* FROM public.events e, (SELECT pg_sleep({sleep})) s) AS slow"
    return partitioned_read(spark, opts, query, upper=ROWS + 1, partitions=partitions)


def read_error(spark, opts, table: str) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises((Py4JJavaError, PySparkException)) as info:
        spark.read.format("jdbc").options(**opts).option("dbtable", table).load().collect()
    return str(info.value), time.monotonic() - started


def test_a_job_three_times_longer_than_the_token_ttl(spark, emulator, workspace, events, short_ttl) -> None:
    """2 s tokens (stale after 1 s), a job of ~8 s: mints follow time, not connections."""
    emulator.token_ttl = 2
    before = provider_stats(spark)
    with BrokerService(TokenBroker(workspace)) as service:
        opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
        started = time.monotonic()
        rows = slow_read(spark, opts, partitions=32, sleep=0.5).count()
        elapsed = time.monotonic() - started
        stats = service.stats()
    after = provider_stats(spark)
    logins = after["logins"] - before["logins"]
    refresh_interval = 2 * 0.5  # tokens turn stale (and are replaced) at half their life
    report = {
        "ttl_s": 2,
        "elapsed_s": round(elapsed, 1),
        "partitions": 32,
        "logins": logins,
        "mints": stats["mints"],
        "tokens_served": stats["tokens_served"],
        "mint_bound": int(elapsed / refresh_interval) + 2,
        "auth_retries": after["auth_retries"] - before["auth_retries"],
        "cold_start_retries": after["cold_start_retries"] - before["cold_start_retries"],
    }
    print("long-job:", json.dumps(report))
    assert rows == ROWS
    assert elapsed > 3 * 2
    assert logins >= 32  # one login per partition (plus the schema query)
    assert 2 <= stats["mints"] <= report["mint_bound"]
    assert stats["mints"] < logins / 3  # bounded by time, not by connections
    # Concurrent task threads share the JVM's broker fetches (single flight). Per refresh window the JVM
    # asks twice: once when its token turns stale (served at once, while the broker refreshes), and
    # once more for the new token.
    assert stats["tokens_served"] <= 2 * stats["mints"] + 2
    assert report["auth_retries"] == 0  # no login ever used an expired token


def test_a_token_revoked_mid_job_is_replaced(spark, emulator, workspace, events) -> None:
    before = provider_stats(spark)
    with BrokerService(TokenBroker(workspace)) as service:
        opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
        revoker = threading.Timer(1.2, emulator.tokens.revoke)
        revoker.start()
        try:
            rows = slow_read(spark, opts, partitions=8, sleep=0.6).count()
        finally:
            revoker.cancel()
        stats = service.stats()
    after = provider_stats(spark)
    print("revocation:", json.dumps({"mints": stats["mints"], "refused_tokens": stats["refused_tokens"]}))
    assert rows == ROWS
    assert after["auth_retries"] - before["auth_retries"] >= 1
    assert stats["refused_tokens"] == 1  # every JVM thread that hit the revoked token caused one mint
    assert stats["mints"] == 2


def test_transient_api_faults_during_a_read(spark, emulator, workspace, events) -> None:
    with BrokerService(TokenBroker(workspace)) as service:
        opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
        emulator.faults.fail_mints(2, status=429)
        emulator.faults.fail_mints(2, status=503)
        rows = spark.read.format("jdbc").options(**opts).option("dbtable", events).load().count()
        assert rows == ROWS
        assert service.broker.stats.mints == 1
    assert emulator.faults.pending_mint_failures == 0


def test_a_permanent_403_reaches_spark_fast_with_the_fix(spark, emulator, workspace, events) -> None:
    with BrokerService(TokenBroker(workspace)) as service:
        opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
        emulator.faults.fail_mints(
            1, status=403, message="User does not have the workspace access entitlement"
        )
        message, seconds = read_error(spark, opts, events)
    assert "HTTP 403" in message
    assert 'enable the "Workspace access" entitlement' in message
    assert seconds < 10


def test_a_403_keeps_its_fix_with_m2m_auth_and_a_long_endpoint_name(spark, emulator, events) -> None:
    """The SDK's M2M error text ends in a long configuration dump; Spark must still show the whole fix."""
    endpoint = "projects/analytics-production-eu/branches/main-serving-branch/endpoints/primary-read-write"
    emulator.create_endpoint(endpoint)
    with BrokerService(TokenBroker(emulator.workspace_client("m2m"))) as service:
        opts = lakebase_options(endpoint, database=DATABASE, broker=service)
        emulator.faults.fail_mints(
            1, status=403, message="Service principal 1234 does not have the workspace-access entitlement."
        )
        message, _ = read_error(spark, opts, events)
    fix = (
        'enable the "Workspace access" entitlement for this principal (workspace settings > Identity and '
        "access > the user or service principal > Entitlements)"
    )
    assert fix in message
    assert "Config: host=" not in message
    assert "client_secret" not in message


def test_a_missing_endpoint_fails_no_read_of_another(spark, workspace, events) -> None:
    """One user's typo in a shared notebook: the workspace's 404 for it belongs to that endpoint, and the
    JVMs reading another endpoint (here with a cold cache: they ask the broker) are served as before."""
    with BrokerService(TokenBroker(workspace)) as service:
        service.broker.credential(endpoint=ENDPOINT)
        with pytest.raises(EndpointNotFoundError):
            service.broker.credential(endpoint="projects/nope/branches/main/endpoints/missing", force=True)
        opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
        assert spark.read.format("jdbc").options(**opts).option("dbtable", events).load().count() == ROWS
        assert service.broker.stats.refusals_served == 0


def test_cold_start_is_waited_out(spark, emulator, workspace, events) -> None:
    before = provider_stats(spark)
    with BrokerService(TokenBroker(workspace)) as service:
        opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
        woken = emulator.faults.cold_start(down_seconds=1.5, starting_seconds=1.5)
        rows = spark.read.format("jdbc").options(**opts).option("dbtable", events).load().count()
        woken.result(timeout=30)
    retries = provider_stats(spark)["cold_start_retries"] - before["cold_start_retries"]
    print("cold-start:", json.dumps({"cold_start_retries": retries}))
    assert rows == ROWS
    assert retries >= 1


def test_a_dead_endpoint_fails_within_the_budget(spark, opts, events) -> None:
    dead = dict(
        opts,
        url="jdbc:postgresql://127.0.0.1:9/lakebase_test?sslmode=require",
        **{"lakebase.coldstart.timeout.ms": "2000"},
    )
    message, seconds = read_error(spark, dead, events)
    assert "could not log in to 127.0.0.1:9 after" in message
    assert "lakebase.coldstart.timeout.ms" in message
    assert seconds < 15


def test_pinned_tls_broker(spark, workspace, events) -> None:
    with BrokerService(TokenBroker(workspace), tls=True) as service:
        opts = lakebase_options(ENDPOINT, database=DATABASE, broker=service)
        assert opts["lakebase.broker.url"].startswith("https://")
        assert opts["lakebase.broker.fingerprint"] == service.fingerprint
        assert spark.read.format("jdbc").options(**opts).option("dbtable", events).load().count() == ROWS

        wrong = "00" * 32
        message, _ = read_error(spark, dict(opts, **{"lakebase.broker.fingerprint": wrong}), events)
        assert "does not match lakebase.broker.fingerprint" in message
        no_pin = {k: v for k, v in opts.items() if k != "lakebase.broker.fingerprint"}
        message, _ = read_error(spark, no_pin, events)
        assert "lakebase.broker.fingerprint is missing" in message


def test_provisioned_instance_end_to_end(spark, emulator, broker_service, events) -> None:
    emulator.create_instance("lifecycle-instance")
    opts = lakebase_options(instance="lifecycle-instance", database=DATABASE, broker=broker_service)
    df = spark.read.format("jdbc").options(**opts).option("dbtable", events).load()
    assert df.count() == ROWS
    df.limit(10).write.format("jdbc").options(**opts).option("dbtable", "public.events_copy").mode(
        "overwrite"
    ).save()
    assert (
        spark.read.format("jdbc").options(**opts).option("dbtable", "public.events_copy").load().count() == 10
    )
