"""Token broker against the emulator's real workspace API: caching, refresh, single-flight, errors."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Callable
from http import HTTPStatus

import pytest

from lakebase_spark import (
    EndpointNotFoundError,
    InvalidEndpointNameError,
    PermissionDeniedError,
    Secret,
    TokenBroker,
)
from lakebase_spark.serving.service import TOKEN_PATH, BrokerService
from lakebase_spark.testing import LakebaseEmulator
from lakebase_spark.tokens import broker as broker_module

from ..conftest import ENDPOINT

pytestmark = pytest.mark.postgres


class FakeClock:
    """A settable clock: the broker's refresh logic is tested without sleeping."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked_broker(emulator: LakebaseEmulator) -> Callable[[], tuple[TokenBroker, FakeClock]]:
    import time

    def make() -> tuple[TokenBroker, FakeClock]:
        clock = FakeClock(time.time())
        return TokenBroker(emulator.workspace_client("pat"), clock=clock), clock

    return make


def test_credential_is_fresh_then_stale_while_revalidating_then_expired(emulator) -> None:
    import time

    clock, scheduler = FakeClock(time.time()), ManualScheduler()
    broker = TokenBroker(emulator.workspace_client("pat"), clock=clock, scheduler=scheduler)
    mints = emulator.stats.mints
    first = broker.credential(endpoint=ENDPOINT)
    assert broker.credential(endpoint=ENDPOINT) is first
    assert (broker.stats.mints, broker.stats.cache_hits) == (1, 1)
    assert emulator.stats.mints == mints + 1
    # The server's own expire_time drives refresh: 60 min tokens turn stale 20 min early (the SDK's rule).
    assert first.expires_at - first.minted_at == pytest.approx(emulator.token_ttl, abs=5)
    assert first.expires_at - first.refresh_at == pytest.approx(1200, abs=1)
    clock.now = first.refresh_at - 0.001
    assert broker.credential(endpoint=ENDPOINT) is first

    # Stale: the same token at once, told to ask again soon, and exactly one refresh scheduled.
    clock.now = first.refresh_at + 1
    stale = [broker.credential(endpoint=ENDPOINT) for _ in range(3)]
    assert {c.token for c in stale} == {first.token}
    assert all(clock.now < c.refresh_at <= clock.now + 5 for c in stale)
    assert broker.stats.stale_served == 3
    assert [delay for delay, _ in scheduler.pending] == [0.0]
    scheduler.fire()  # the refresh runs
    assert broker.stats.mints == 2
    second = broker.credential(endpoint=ENDPOINT)
    assert second.token != first.token
    assert clock.now < second.refresh_at

    # Expired (within the login margin of expiry, nobody having asked): the caller waits for a mint.
    clock.now = second.expires_at - 10
    third = broker.credential(endpoint=ENDPOINT)
    assert third.token != second.token
    assert broker.stats.mints == 3
    assert scheduler.pending == []


def test_one_token_serves_every_endpoint_of_the_workspace(emulator, clocked_broker) -> None:
    other = "projects/test/branches/dev/endpoints/secondary"
    emulator.create_endpoint(other)
    broker, _ = clocked_broker()
    assert broker.credential(endpoint=ENDPOINT) is broker.credential(endpoint=other)
    assert broker.stats.mints == 1


def test_short_lived_tokens_turn_stale_at_half_their_life(emulator, clocked_broker) -> None:
    broker, _ = clocked_broker()
    old = emulator.token_ttl
    emulator.token_ttl = 8
    try:
        cred = broker.credential(endpoint=ENDPOINT)
    finally:
        emulator.token_ttl = old
    life = cred.expires_at - cred.minted_at
    assert life == pytest.approx(8, abs=1)
    assert cred.expires_at - cred.refresh_at == pytest.approx(life / 2, abs=0.01)


@pytest.mark.parametrize("state", ["stale", "expired"])
def test_sixteen_threads_at_once_cause_one_mint(emulator, clocked_broker, state: str) -> None:
    broker, clock = clocked_broker()
    first = broker.credential(endpoint=ENDPOINT)
    # Everybody asks at once: for a stale token they are served it while one refresh runs; for an
    # expired one they all wait for one mint.
    clock.now = first.refresh_at + 1 if state == "stale" else first.expires_at
    emulator.faults.mint_delay = 0.5  # a slow mint, so the threads really overlap
    barrier = threading.Barrier(16)
    got: list[Secret] = []
    try:

        def ask() -> None:
            barrier.wait()
            got.append(broker.credential(endpoint=ENDPOINT).token)

        threads = [threading.Thread(target=ask) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        deadline = time.monotonic() + 30
        while broker.stats.mints < 2 and time.monotonic() < deadline:  # a refresh in the background
            time.sleep(0.05)
    finally:
        emulator.faults.mint_delay = 0.0
    assert len(got) == 16
    assert broker.stats.mints == 2  # the first one, and exactly one for the refresh
    assert len({s.reveal() for s in got}) == 1
    assert (got[0] == first.token) == (state == "stale")
    assert broker.stats.stale_served == (16 if state == "stale" else 0)


def test_force_mints_a_fresh_token(clocked_broker) -> None:
    broker, _ = clocked_broker()
    first = broker.credential(endpoint=ENDPOINT)
    assert broker.credential(endpoint=ENDPOINT, force=True).token != first.token


@pytest.mark.parametrize(
    "name",
    [
        "primary",
        "projects/test/branches/main",
        "projects/test/branches/main/endpoints/",
        "projects/te st/branches/main/endpoints/primary",
        "projects/test/branches/main/endpoints/primary/extra",
        "projects/test/branches/main/endpoints/x;drop table t",
    ],
)
def test_malformed_endpoint_names_fail_before_any_api_call(emulator, clocked_broker, name: str) -> None:
    broker, _ = clocked_broker()
    _ = broker.principal
    calls = emulator.stats.mints
    with pytest.raises(InvalidEndpointNameError, match="projects/<project>/branches/<branch>/endpoints"):
        broker.credential(endpoint=name)
    assert emulator.stats.mints == calls


def test_exactly_one_target_is_required(clocked_broker) -> None:
    broker, _ = clocked_broker()
    with pytest.raises(ValueError, match="exactly one"):
        broker.credential()
    with pytest.raises(ValueError, match="exactly one"):
        broker.credential(endpoint=ENDPOINT, instance="inst")


def test_unknown_endpoint_says_what_to_check(clocked_broker) -> None:
    broker, _ = clocked_broker()
    with pytest.raises(EndpointNotFoundError, match="no such resource") as info:
        broker.credential(endpoint="projects/test/branches/main/endpoints/missing")
    assert "projects/<project>" in str(info.value)
    assert broker.stats.mint_failures == 1


def test_a_wrong_pat_is_a_permission_error(emulator) -> None:
    from databricks.sdk import WorkspaceClient

    bad = WorkspaceClient(host=emulator.host, token="dapi-not-a-real-token")
    with pytest.raises(PermissionDeniedError, match="renew the workspace credentials the SDK uses"):
        _ = TokenBroker(bad).principal


def test_service_principal_m2m_gets_its_own_token(emulator) -> None:
    application_id, client_id, client_secret = emulator.add_service_principal()
    from databricks.sdk import WorkspaceClient

    w = WorkspaceClient(host=emulator.host, client_id=client_id, client_secret=client_secret)
    broker = TokenBroker(w)
    assert broker.principal == application_id
    cred = broker.credential(endpoint=ENDPOINT)
    assert cred.principal == application_id


def test_provisioned_instance_credential(emulator, clocked_broker) -> None:
    emulator.create_instance("test-instance")
    broker, _ = clocked_broker()
    cred = broker.credential(instance="test-instance")
    assert cred.expires_at > cred.refresh_at > cred.minted_at
    with pytest.raises(EndpointNotFoundError):
        broker.credential(instance="no-such-instance", force=True)


def test_secrets_never_print(clocked_broker) -> None:
    broker, _ = clocked_broker()
    cred = broker.credential(endpoint=ENDPOINT)
    token = cred.token.reveal()
    for text in (repr(cred), str(cred), repr(cred.token), str(cred.token), f"{cred.token}", repr(broker)):
        assert token not in text
    with pytest.raises(TypeError, match="pickled"):
        pickle.dumps(cred.token)


class ManualScheduler:
    """Records scheduled background refreshes so the test runs them, instead of waiting for them."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None]]] = []
        self.cancelled = 0

    def fire(self) -> None:
        """The first timer fires."""
        _, callback = self.pending.pop(0)
        callback()

    def __call__(self, delay: float, callback: Callable[[], None]) -> Callable[[], None]:
        entry = (delay, callback)
        self.pending.append(entry)

        def cancel() -> None:
            if entry in self.pending:
                self.pending.remove(entry)
                self.cancelled += 1

        return cancel


def test_background_refresh_mints_before_anyone_asks(emulator) -> None:
    import time

    clock, scheduler = FakeClock(time.time()), ManualScheduler()
    broker = TokenBroker(
        emulator.workspace_client("pat", retry_timeout_seconds=1),
        background_refresh=True,
        clock=clock,
        scheduler=scheduler,
    )
    first = broker.credential(endpoint=ENDPOINT)
    [(delay, _)] = scheduler.pending
    assert delay == pytest.approx(first.refresh_at - clock.now, abs=0.01)

    clock.now = first.refresh_at  # the timer fires: the next token is minted in the background
    scheduler.fire()
    assert broker.stats.mints == 2
    second = broker.credential(endpoint=ENDPOINT)  # served from the cache: nobody waited on a mint
    assert second.token != first.token
    assert broker.stats.cache_hits == 1
    assert len(scheduler.pending) == 1  # the following refresh is already scheduled

    emulator.faults.api_down_for(3600)  # a failed background refresh keeps the current token
    clock.now = second.refresh_at
    try:
        scheduler.fire()
    finally:
        emulator.faults.api_down_for(0)
    assert broker.stats.refresh_failures == 1
    assert broker.stats.mints == 2
    [(retry_in, _)] = scheduler.pending  # ... and is retried after a jittered backoff
    assert 0.5 <= retry_in <= 1.0
    assert broker.credential(endpoint=ENDPOINT).token == second.token  # still served meanwhile
    clock.now += retry_in
    scheduler.fire()
    third = broker.credential(endpoint=ENDPOINT)
    assert third.token != second.token
    assert broker.stats.mints == 3
    assert len(scheduler.pending) == 1
    broker.close()
    assert scheduler.cancelled == 1
    assert broker.stats.seconds_left == pytest.approx(third.expires_at - clock.now, abs=1)


def test_transient_429_and_503_bursts_are_retried_within_the_budget(emulator) -> None:
    broker = TokenBroker(emulator.workspace_client("pat"))
    _ = broker.principal
    calls = emulator.stats.calls_to("POST /api/2.0/postgres/credentials")
    emulator.faults.fail_mints(2, status=429)
    emulator.faults.fail_mints(2, status=503)
    cred = broker.credential(endpoint=ENDPOINT)
    assert cred.token.reveal()
    assert broker.stats.mints == 1
    assert broker.stats.mint_failures == 0
    assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") - calls == 5


def test_a_permanent_403_fails_fast_with_the_fix(emulator) -> None:
    import time

    broker = TokenBroker(emulator.workspace_client("pat"))
    _ = broker.principal
    emulator.faults.fail_mints(
        1,
        status=403,
        message="Service principal 1234 does not have the workspace-access entitlement.",
    )
    started = time.monotonic()
    with pytest.raises(PermissionDeniedError, match='enable the "Workspace access" entitlement'):
        broker.credential(endpoint=ENDPOINT)
    assert time.monotonic() - started < 5  # not retried
    assert emulator.faults.pending_mint_failures == 0


def test_the_retry_budget_is_the_sdks(emulator) -> None:
    broker = TokenBroker(emulator.workspace_client("pat", retry_timeout_seconds=42))
    assert broker.retry_budget == 42


def login(emulator: LakebaseEmulator, broker: TokenBroker, token: Secret) -> None:
    """A real Postgres login with ``token``, as an executor would make with it."""
    import psycopg

    host, port = emulator.postgres.host, emulator.postgres.port
    with psycopg.connect(
        host=host,
        port=port,
        dbname="databricks_postgres",
        user=broker.principal,
        password=token.reveal(),
        sslmode="require",
        connect_timeout=10,
    ) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_15_minute_workspace_outage_in_the_stale_window_fails_no_login(emulator) -> None:
    """Simulated time: a 60-minute token, the API down from 1 minute into its stale window for 15."""
    clock, scheduler = FakeClock(time.time()), ManualScheduler()
    workspace = emulator.workspace_client("pat", retry_timeout_seconds=1)
    broker = TokenBroker(workspace, clock=clock, scheduler=scheduler)
    first = broker.credential(endpoint=ENDPOINT)
    api_mints = emulator.stats.mints
    clock.now = first.refresh_at + 60
    emulator.faults.api_down_for(3600)  # real time; ended below, after 15 simulated minutes
    try:
        for _ in range(5):  # a login every 3 minutes; each request finds the last retry's backoff over
            served = broker.credential(endpoint=ENDPOINT)
            assert served.token == first.token
            login(emulator, broker, served.token)
            while scheduler.pending:  # the refresh (or retry) this request started, failing
                scheduler.fire()
            clock.now += 180
    finally:
        emulator.faults.api_down_for(0)
    assert broker.stats.mint_failures == 0  # no caller ever saw the outage
    assert broker.stats.refresh_failures == 5  # retried through it
    assert broker.stats.mints == 1
    served = broker.credential(endpoint=ENDPOINT)  # the API is back: the next request refreshes
    assert served.token == first.token
    [_] = scheduler.pending
    scheduler.fire()
    renewed = broker.credential(endpoint=ENDPOINT)
    assert renewed.token != first.token
    login(emulator, broker, renewed.token)
    assert broker.stats.mints == 2
    assert emulator.stats.mints == api_mints + 1  # exactly one successful mint when it returned


def test_an_outage_past_expiry_is_a_clear_error_naming_it(emulator) -> None:
    from lakebase_spark import CredentialError

    clock, scheduler = FakeClock(time.time()), ManualScheduler()
    broker = TokenBroker(
        emulator.workspace_client("pat", retry_timeout_seconds=1), clock=clock, scheduler=scheduler
    )
    first = broker.credential(endpoint=ENDPOINT)
    clock.now = first.refresh_at + 1
    emulator.faults.api_down_for(3600)
    try:
        assert broker.credential(endpoint=ENDPOINT).token == first.token
        scheduler.fire()
        clock.now = first.expires_at - 1
        with pytest.raises(CredentialError, match="workspace API has been failing for") as info:
            broker.credential(endpoint=ENDPOINT)
    finally:
        emulator.faults.api_down_for(0)
    # Every failed attempt counts: the background refresh and this caller's own mint.
    assert "(2 failed attempts to mint a new database credential since" in str(info.value)
    assert "kept failing transiently" in str(info.value)  # the outage itself, as the SDK saw it
    assert broker.stats.mint_failures == 1


# -- refusals: a 401/403/404 is not an outage -------------------------------------------------------

CAN_USE = "User does not have CAN_USE permission on the project"


def refusing_broker(emulator) -> tuple[TokenBroker, FakeClock, ManualScheduler]:
    clock, scheduler = FakeClock(time.time()), ManualScheduler()
    workspace = emulator.workspace_client("pat", retry_timeout_seconds=1)
    return TokenBroker(workspace, clock=clock, scheduler=scheduler), clock, scheduler


def test_a_refused_refresh_drops_the_stale_token_and_fails_every_caller_at_once(emulator) -> None:
    broker, clock, scheduler = refusing_broker(emulator)
    first = broker.credential(endpoint=ENDPOINT)
    calls = emulator.stats.calls_to("POST /api/2.0/postgres/credentials")
    clock.now = first.refresh_at + 1
    emulator.faults.fail_mints(1000, status=403, message=CAN_USE)
    try:
        assert broker.credential(endpoint=ENDPOINT).token == first.token  # stale: served, refresh starts
        scheduler.fire()  # refused
        for _ in range(20):  # a herd of JVMs and task retries: the refusal, at once, the fix first
            with pytest.raises(PermissionDeniedError) as info:
                broker.credential(endpoint=ENDPOINT)
            assert str(info.value).startswith("To fix: grant the principal CAN USE")
            assert CAN_USE in str(info.value)
        assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") - calls == 1
        assert broker.stats.refusals_served == 20
        clock.now += broker_module.REFUSAL_HOLD  # then the workspace is asked again
        with pytest.raises(PermissionDeniedError):
            broker.credential(endpoint=ENDPOINT)
        assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") - calls == 2
    finally:
        emulator.faults.clear()
    clock.now += broker_module.REFUSAL_HOLD  # a grant takes effect without restarting anything
    assert broker.credential(endpoint=ENDPOINT).token != first.token


def test_a_refusal_after_a_failed_refresh_is_still_a_refusal_not_an_outage(emulator) -> None:
    """The race of the 22-minute hang: a transient refresh failure, then a refused blocking mint, which was
    reported as a retryable outage (502) instead of the refusal (403)."""
    broker, clock, scheduler = refusing_broker(emulator)
    service = BrokerService(broker)
    first = broker.credential(endpoint=ENDPOINT)
    clock.now = first.refresh_at + 1
    emulator.faults.api_down_for(3600)
    try:
        assert broker.credential(endpoint=ENDPOINT).token == first.token
        scheduler.fire()  # the refresh fails transiently
    finally:
        emulator.faults.api_down_for(0)
    assert broker.stats.refresh_failures == 1
    emulator.faults.fail_mints(1000, status=403, message=CAN_USE)
    try:
        clock.now = first.expires_at - 1  # expired: a blocking mint, refused
        status, body = service.answer(
            f"{TOKEN_PATH}?endpoint={ENDPOINT}", f"Bearer {service.secret.reveal()}"
        )
    finally:
        emulator.faults.clear()
    assert status == HTTPStatus.FORBIDDEN
    assert body["error"].startswith("To fix: grant the principal CAN USE")
    assert "failing for" not in body["error"]


def test_callers_waiting_for_a_failing_mint_share_its_failure(emulator) -> None:
    broker, _, _ = refusing_broker(emulator)
    _ = broker.principal
    calls = emulator.stats.calls_to("POST /api/2.0/postgres/credentials")
    emulator.faults.mint_delay = 0.5  # the threads queue behind the first mint
    emulator.faults.fail_mints(1000, status=403, message=CAN_USE)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def ask() -> None:
        barrier.wait()
        try:
            broker.credential(endpoint=ENDPOINT)
        except BaseException as e:
            errors.append(e)

    try:
        threads = [threading.Thread(target=ask) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        emulator.faults.mint_delay = 0.0
        emulator.faults.clear()
    assert len(errors) == 8
    assert all(isinstance(e, PermissionDeniedError) for e in errors)
    assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") - calls == 1


# -- a refusal belongs to what it refused -----------------------------------------------------------

MISSING = "projects/nope/branches/main/endpoints/missing"


def test_a_404_for_one_endpoint_fails_and_drops_nothing_of_another(emulator) -> None:
    broker, clock, _ = refusing_broker(emulator)
    good = broker.credential(endpoint=ENDPOINT)
    with pytest.raises(EndpointNotFoundError, match="missing"):
        broker.credential(endpoint=MISSING, force=True)
    calls = emulator.stats.calls_to("POST /api/2.0/postgres/credentials")
    # The good endpoint keeps its token; the missing one fails at once, without asking the workspace.
    assert broker.credential(endpoint=ENDPOINT).token == good.token
    with pytest.raises(EndpointNotFoundError, match="missing"):
        broker.credential(endpoint=MISSING)
    assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") == calls
    # A refresh of the good endpoint's token mints as usual meanwhile.
    assert broker.credential(endpoint=ENDPOINT, force=True).token != good.token
    clock.now += broker_module.REFUSAL_HOLD  # then the missing endpoint is asked about again
    with pytest.raises(EndpointNotFoundError):
        broker.credential(endpoint=MISSING)
    assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") == calls + 2


def test_a_403_on_one_project_refuses_that_project_only(emulator) -> None:
    other = "projects/other/branches/main/endpoints/primary"
    emulator.create_endpoint(other)
    broker, clock, _ = refusing_broker(emulator)
    first = broker.credential(endpoint=ENDPOINT)
    emulator.revoke_can_use(project="other")
    try:
        with pytest.raises(PermissionDeniedError, match="CAN USE") as info:
            broker.credential(endpoint=other, force=True)
        assert info.value.status == 403
        assert broker.credential(endpoint=ENDPOINT).token == first.token  # project test: untouched
        assert broker.credential(endpoint=ENDPOINT, force=True).token != first.token  # and it mints
        calls = emulator.stats.calls_to("POST /api/2.0/postgres/credentials")
        with pytest.raises(PermissionDeniedError):  # held for project other: no API call, no cached token
            broker.credential(endpoint=other)
        assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") == calls
        clock.now += broker_module.REFUSAL_HOLD
        with pytest.raises(PermissionDeniedError):  # asked again after the hold, not served the cache
            broker.credential(endpoint=other)
        assert emulator.stats.calls_to("POST /api/2.0/postgres/credentials") == calls + 1
    finally:
        emulator.grant_can_use(project="other")
    clock.now += broker_module.REFUSAL_HOLD  # granted: works without restarting anything
    assert broker.credential(endpoint=other).token == broker.credential(endpoint=ENDPOINT).token


def test_a_401_refuses_the_identity_for_every_endpoint(emulator) -> None:
    other = "projects/other/branches/main/endpoints/primary"
    emulator.create_endpoint(other)
    broker, clock, _ = refusing_broker(emulator)
    first = broker.credential(endpoint=ENDPOINT)
    emulator.faults.fail_mints(1, status=401, message="Invalid access token")
    try:
        with pytest.raises(PermissionDeniedError, match="renew the workspace credentials") as info:
            broker.credential(endpoint=ENDPOINT, force=True)
        assert info.value.status == 401
        for endpoint in (ENDPOINT, other):  # every endpoint, and the cached token is dropped
            with pytest.raises(PermissionDeniedError, match="HTTP 401"):
                broker.credential(endpoint=endpoint)
    finally:
        emulator.faults.clear()
    clock.now += broker_module.REFUSAL_HOLD
    assert broker.credential(endpoint=other).token != first.token
