"""``connect()``: psycopg logins the way the JVM provider logs in, against the emulator's real Postgres.

TLS always, the broker's principal as the role, one retry with a new token when the database refuses
the cached one, a starting database waited out, and failures that name the database, never the token.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from lakebase_spark import DatabaseConnectionError, TLSRequiredError, TokenBroker, connect
from lakebase_spark.postgres.connection import APPLICATION_NAME

from ..conftest import DATABASE, ENDPOINT

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_tokens(emulator: Any, request: pytest.FixtureRequest) -> TokenBroker:
    """A broker for a principal of the test's own: revoking its tokens disturbs no other test's cache."""
    user = f"conn-{request.node.name[-24:].replace('_', '-')}@example.com"
    return TokenBroker(emulator.workspace_client(token=emulator.add_user(user)))


def test_connect_logs_in_over_tls_as_the_brokers_principal(own_tokens: TokenBroker) -> None:
    with connect(endpoint=ENDPOINT, database=DATABASE, tokens=own_tokens) as conn:
        row = conn.execute(
            "SELECT s.ssl, current_user, current_database(), a.application_name "
            "FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE pid = pg_backend_pid()"
        ).fetchone()
    assert row == (True, own_tokens.principal, DATABASE, APPLICATION_NAME)
    assert own_tokens.stats.mints == 1


def test_a_token_the_database_refuses_is_replaced_once(emulator: Any, own_tokens: TokenBroker) -> None:
    with connect(endpoint=ENDPOINT, database=DATABASE, tokens=own_tokens) as conn:
        conn.execute("SELECT 1")
    assert emulator.tokens.revoke(own_tokens.principal) == 1  # the cached token stops logging in
    with connect(endpoint=ENDPOINT, database=DATABASE, tokens=own_tokens) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (own_tokens.principal,)
    assert (own_tokens.stats.mints, own_tokens.stats.refused_tokens) == (2, 1)


def test_refused_logins_fail_after_one_new_token_naming_the_database_not_the_token(
    emulator: Any, own_tokens: TokenBroker
) -> None:
    emulator.faults.refuse_logins_for(60)
    try:
        with pytest.raises(DatabaseConnectionError) as caught:
            connect(endpoint=ENDPOINT, database=DATABASE, tokens=own_tokens, label="orders db")
    finally:
        emulator.faults.refuse_logins_for(0)
    assert own_tokens.stats.refused_tokens == 1  # one new token, then it gave up
    token = own_tokens.credential(endpoint=ENDPOINT).token.reveal()
    error = caught.value
    assert "orders db" in str(error)
    assert repr(DATABASE) in str(error)
    assert token not in str(error)
    assert token not in repr(error.args)
    assert error.__cause__ is None
    assert error.__context__ is None


def test_a_starting_database_is_waited_out(emulator: Any, own_tokens: TokenBroker) -> None:
    woken = emulator.faults.cold_start(down_seconds=1.0, starting_seconds=1.0)
    started = time.monotonic()
    try:
        with connect(endpoint=ENDPOINT, database=DATABASE, tokens=own_tokens, cold_start_timeout=60) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        waited = time.monotonic() - started
    finally:
        woken.result(timeout=120)
    assert waited >= 1.0  # it really met the suspended server, and retried until it was up
    assert own_tokens.stats.refused_tokens == 0  # a starting database is not a refused token


def test_a_database_still_starting_after_the_timeout_names_the_wait(
    emulator: Any, own_tokens: TokenBroker
) -> None:
    woken = emulator.faults.cold_start(down_seconds=3.0, starting_seconds=1.0)
    try:
        with pytest.raises(
            DatabaseConnectionError, match=r"attempts over 0.5 s \(the endpoint may be starting"
        ):
            connect(endpoint=ENDPOINT, database=DATABASE, tokens=own_tokens, cold_start_timeout=0.5)
    finally:
        woken.result(timeout=120)


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_a_mode_that_allows_plaintext_is_refused_before_any_login(mode: str) -> None:
    with pytest.raises(TLSRequiredError, match=mode):
        connect(endpoint=ENDPOINT, database=DATABASE, sslmode=mode)
