"""The local Lakebase emulator, driven by the real databricks-sdk and real Postgres logins (no mocks)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from databricks.sdk import WorkspaceClient
from databricks.sdk import errors as sdk_errors
from google.protobuf.duration_pb2 import Duration

from lakebase_spark.testing import (
    SECRET_PREFIXES,
    TOKEN_PREFIX,
    BerDecodeError,
    EmulatorNotRunningError,
    LakebaseEmulator,
    LoginFailure,
    PostgresNotFoundError,
    PostgresStartError,
    Route,
    TokenStore,
)
from lakebase_spark.testing.ldap import (
    INVALID_CREDENTIALS,
    SUCCESS,
    BindRequest,
    LdapServer,
    UnbindRequest,
    UnsupportedRequest,
    decode_message,
    encode_bind_response,
    read_message,
)
from lakebase_spark.testing.postgres import BINDIR_ENV, find_bindir

pytestmark = pytest.mark.postgres

ENDPOINT = "projects/emu/branches/main/endpoints/primary"
INSTANCE = "emu-instance"
OTHER_DB = "emu_other"
TTL = 600.0


class ShiftableClock:
    """Real time plus an offset: tokens expire when a test moves the clock, without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(scope="module")
def clock() -> ShiftableClock:
    return ShiftableClock()


@pytest.fixture(scope="module")
def emu(clock: ShiftableClock) -> Iterator[LakebaseEmulator]:
    with LakebaseEmulator(
        token_ttl=TTL, databases=("databricks_postgres", OTHER_DB), clock=clock
    ) as emulator:
        emulator.create_endpoint(ENDPOINT)
        emulator.create_instance(INSTANCE)
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "emu" in request.fixturenames:
        emulator: LakebaseEmulator = request.getfixturevalue("emu")
        emulator.faults.clear()
        emulator.token_ttl = TTL


@pytest.fixture(scope="module")
def w(emu: LakebaseEmulator) -> WorkspaceClient:
    return emu.workspace_client("pat")


def login(
    emu: LakebaseEmulator, user: str, password: str, *, dbname: str = "databricks_postgres", **kw: Any
) -> psycopg.Connection[Any]:
    options: dict[str, Any] = {"sslmode": "require", "connect_timeout": 5, **kw}
    return psycopg.connect(
        host="127.0.0.1", port=emu.postgres.port, user=user, password=password, dbname=dbname, **options
    )


def mint(w: WorkspaceClient, endpoint: str = ENDPOINT) -> str:
    token = w.postgres.generate_database_credential(endpoint=endpoint).token
    assert token is not None
    return token


# -- workspace API through the real SDK -----------------------------------------------------------------


def test_pat_auth_identifies_the_user(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    assert w.config.auth_type == "pat"
    assert w.current_user.me().user_name == emu.user_name


def test_m2m_auth_identifies_the_service_principal_by_application_id(emu: LakebaseEmulator) -> None:
    application_id, client_id, client_secret = emu.add_service_principal()
    assert client_id == application_id == str(uuid.UUID(application_id))
    before = emu.stats.calls_to(Route.OIDC_TOKEN)
    # The plain SDK constructor, as a user would write it: the SDK picks oauth-m2m by itself.
    sp = WorkspaceClient(host=emu.host, client_id=client_id, client_secret=client_secret)
    assert sp.config.auth_type == "oauth-m2m"
    assert sp.current_user.me().user_name == application_id
    assert emu.stats.calls_to(Route.OIDC_TOKEN) == before + 1
    token = mint(sp)
    with login(emu, application_id, token) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (application_id,)


def test_m2m_with_a_wrong_secret_fails(emu: LakebaseEmulator) -> None:
    _, client_id, _ = emu.add_service_principal()
    sp = emu.workspace_client("m2m", client_id=client_id, client_secret="dose-wrong")
    with pytest.raises(ValueError, match="invalid_client"):
        sp.current_user.me()


def test_a_bad_pat_is_unauthenticated(emu: LakebaseEmulator) -> None:
    bad = emu.workspace_client(token="dapi-not-a-real-token")
    with pytest.raises(sdk_errors.Unauthenticated, match="Invalid access token"):
        bad.current_user.me()
    with pytest.raises(sdk_errors.Unauthenticated):
        bad.postgres.generate_database_credential(endpoint=ENDPOINT)


def test_api_calls_without_a_bearer_get_databricks_401_json(emu: LakebaseEmulator) -> None:
    for path in ("/api/2.0/preview/scim/v2/Me", f"/api/2.0/postgres/{ENDPOINT}", "/api/2.0/no/such/api"):
        response = requests.get(emu.host + path, timeout=5)
        assert response.status_code == 401, path
        assert response.json()["error_code"] == "UNAUTHENTICATED"
    response = requests.get(emu.host + "/api/2.0/no/such/api", headers={"Authorization": f"Bearer {emu.pat}"})
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_host_metadata_points_oauth_at_the_emulator(emu: LakebaseEmulator) -> None:
    meta = requests.get(emu.host + "/.well-known/databricks-config", timeout=5).json()
    assert meta["oidc_endpoint"] == f"{emu.host}/oidc"
    assert meta["workspace_id"] == emu.workspace_id
    discovery = requests.get(emu.host + "/oidc/.well-known/oauth-authorization-server", timeout=5).json()
    assert discovery["token_endpoint"] == f"{emu.host}/oidc/v1/token"


def test_client_credentials_in_form_fields_work_too(emu: LakebaseEmulator) -> None:
    _, client_id, secret = emu.add_service_principal()
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = requests.post(emu.host + "/oidc/v1/token", data=form, timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    me = requests.get(
        emu.host + "/api/2.0/preview/scim/v2/Me",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=5,
    )
    assert me.json()["userName"] == client_id
    bad = requests.post(emu.host + "/oidc/v1/token", data={**form, "grant_type": "password"}, timeout=5)
    assert (bad.status_code, bad.json()["error"]) == (400, "unsupported_grant_type")


def test_get_endpoint_reports_the_postgres_host_with_port(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    endpoint = w.postgres.get_endpoint(name=ENDPOINT)
    assert endpoint.name == ENDPOINT
    assert endpoint.status is not None
    assert endpoint.status.hosts is not None
    assert endpoint.status.current_state is not None
    assert endpoint.status.current_state.value == "ACTIVE"
    assert endpoint.status.hosts.host == emu.postgres_host == f"127.0.0.1:{emu.postgres.port}"


def test_unknown_endpoint_is_not_found(w: WorkspaceClient) -> None:
    missing = "projects/emu/branches/main/endpoints/missing"
    with pytest.raises(sdk_errors.NotFound, match="missing"):
        w.postgres.get_endpoint(name=missing)
    with pytest.raises(sdk_errors.NotFound):
        w.postgres.generate_database_credential(endpoint=missing)


def test_credential_expires_after_the_configured_ttl(
    emu: LakebaseEmulator, w: WorkspaceClient, clock: ShiftableClock
) -> None:
    mints = emu.stats.mints
    cred = w.postgres.generate_database_credential(endpoint=ENDPOINT)
    assert cred.token is not None
    assert cred.token.startswith(TOKEN_PREFIX)
    assert cred.expire_time is not None
    assert cred.expire_time.ToSeconds() == pytest.approx(clock() + TTL, abs=2)
    assert emu.stats.mints == mints + 1
    assert emu.stats.mints_by_principal[emu.user_name] >= 1

    emu.token_ttl = 1  # very short TTLs are allowed, for refresh tests
    short = w.postgres.generate_database_credential(endpoint=ENDPOINT)
    assert short.expire_time is not None
    assert short.expire_time.ToSeconds() == pytest.approx(clock() + 1, abs=1.5)


def test_requested_ttl_may_shorten_but_must_be_within_lakebase_bounds(
    w: WorkspaceClient, clock: ShiftableClock
) -> None:
    cred = w.postgres.generate_database_credential(endpoint=ENDPOINT, ttl=Duration(seconds=300))
    assert cred.expire_time is not None
    assert cred.expire_time.ToSeconds() == pytest.approx(clock() + 300, abs=2)
    capped = w.postgres.generate_database_credential(endpoint=ENDPOINT, ttl=Duration(seconds=3600))
    assert capped.expire_time is not None
    assert capped.expire_time.ToSeconds() == pytest.approx(clock() + TTL, abs=2)  # the emulator's cap wins
    with pytest.raises(sdk_errors.BadRequest, match="between 300s and 3600s"):
        w.postgres.generate_database_credential(endpoint=ENDPOINT, ttl=Duration(seconds=60))


# -- Postgres logins --------------------------------------------------------------------------------------


def test_token_logs_in_over_tls(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    ok = emu.tokens.stats.logins_ok
    with login(emu, emu.user_name, mint(w)) as conn:
        row = conn.execute(
            "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
        assert row == (emu.user_name, True)
        # The principal may create (and so own) tables in public.
        conn.execute("CREATE TABLE IF NOT EXISTS emu_owned (id int)")
    assert emu.tokens.stats.logins_ok == ok + 1


def test_the_server_certificate_verifies_for_127_0_0_1(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    token = mint(w)
    with login(emu, emu.user_name, token, sslmode="verify-full", sslrootcert=str(emu.postgres.cert_file)):
        pass


def test_plain_tcp_is_refused_before_any_password_is_sent(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    token = mint(w)
    before = emu.tokens.stats
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        login(emu, emu.user_name, token, sslmode="disable")
    after = emu.tokens.stats
    assert (after.logins_ok, after.logins_failed) == (before.logins_ok, before.logins_failed)


def assert_refused(emu: LakebaseEmulator, user: str, password: str, reason: LoginFailure) -> None:
    before = emu.tokens.stats.failures.get(reason, 0)
    with pytest.raises(psycopg.OperationalError, match="LDAP authentication failed"):
        login(emu, user, password)
    assert emu.tokens.stats.failures.get(reason, 0) == before + 1


def test_a_wrong_token_is_refused(emu: LakebaseEmulator) -> None:
    assert_refused(emu, emu.user_name, TOKEN_PREFIX + "never-minted", LoginFailure.UNKNOWN)


def test_a_token_logs_in_only_its_own_principal(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    bob_pat = emu.add_user("bob@example.com")
    bob = emu.workspace_client(token=bob_pat)
    assert bob.current_user.me().user_name == "bob@example.com"
    bobs_token = mint(bob)
    assert_refused(emu, emu.user_name, bobs_token, LoginFailure.WRONG_PRINCIPAL)
    with login(emu, "bob@example.com", bobs_token) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("bob@example.com",)


def test_expiry_is_checked_at_login_only(
    emu: LakebaseEmulator, w: WorkspaceClient, clock: ShiftableClock
) -> None:
    token = mint(w)
    with login(emu, emu.user_name, token) as conn:
        clock.advance(TTL + 1)
        assert_refused(emu, emu.user_name, token, LoginFailure.EXPIRED)
        # Postgres asked the authenticator at login only: the open session carries on.
        assert conn.execute("SELECT 42").fetchone() == (42,)
    with login(emu, emu.user_name, mint(w)):  # a fresh token is fine
        pass


def test_revoked_tokens_are_refused(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    token = mint(w)
    assert emu.tokens.revoke(emu.user_name) >= 1
    assert_refused(emu, emu.user_name, token, LoginFailure.REVOKED)


def test_several_tokens_are_valid_at_once(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    first, second = mint(w), mint(w)
    assert first != second
    with login(emu, emu.user_name, first), login(emu, emu.user_name, second):
        pass


def test_tokens_are_workspace_scoped(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    other = "projects/emu/branches/dev/endpoints/secondary"
    assert emu.create_endpoint(other) == emu.postgres_host
    token = mint(w, other)
    with login(emu, emu.user_name, token, dbname=OTHER_DB) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (OTHER_DB,)
    with login(emu, emu.user_name, token):
        pass


def test_a_principal_without_a_role_mints_but_cannot_log_in(emu: LakebaseEmulator) -> None:
    pat = emu.add_user("norole@example.com", role=False)
    token = mint(emu.workspace_client(token=pat))
    with pytest.raises(psycopg.OperationalError, match=r'role "norole@example\.com" does not exist'):
        login(emu, "norole@example.com", token)


def test_new_databases_are_granted_to_existing_principals(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    emu.create_database("emu_later")
    with psycopg.connect(emu.admin_conninfo("emu_later"), autocommit=True) as admin:
        admin.execute("CREATE TABLE seeded (id int)")
        admin.execute("INSERT INTO seeded VALUES (7)")
    with login(emu, emu.user_name, mint(w), dbname="emu_later") as conn:
        assert conn.execute("SELECT id FROM seeded").fetchone() == (7,)


# -- Lakebase Provisioned ---------------------------------------------------------------------------------


def test_provisioned_instance_and_credential(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    instance = w.database.get_database_instance(name=INSTANCE)
    assert instance.read_write_dns == emu.postgres_host
    assert instance.state is not None
    assert instance.state.value == "AVAILABLE"
    cred = w.database.generate_database_credential(instance_names=[INSTANCE], request_id=str(uuid.uuid4()))
    assert cred.token is not None
    assert cred.expiration_time is not None
    with login(emu, emu.user_name, cred.token):
        pass
    with pytest.raises(sdk_errors.NotFound):
        w.database.get_database_instance(name="no-such-instance")
    with pytest.raises(sdk_errors.NotFound):
        w.database.generate_database_credential(instance_names=["no-such-instance"])


# -- fault injection --------------------------------------------------------------------------------------


def test_injected_503s_are_retried_by_the_sdk(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    calls, mints = emu.stats.calls_to(Route.POSTGRES_CREDENTIALS), emu.stats.mints
    emu.faults.fail_mints(2, status=503)
    assert mint(w).startswith(TOKEN_PREFIX)
    assert emu.stats.calls_to(Route.POSTGRES_CREDENTIALS) == calls + 3
    assert emu.stats.mints == mints + 1
    assert emu.faults.pending_mint_failures == 0


def test_injected_429_carries_retry_after(emu: LakebaseEmulator) -> None:
    emu.faults.fail_mints(1, status=429, retry_after=0)
    response = requests.post(
        emu.host + "/api/2.0/postgres/credentials",
        json={"endpoint": ENDPOINT},
        headers={"Authorization": f"Bearer {emu.pat}"},
        timeout=5,
    )
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "0"
    assert response.json()["error_code"] == "REQUEST_LIMIT_EXCEEDED"


def test_injected_403_is_not_retried(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    emu.faults.fail_mints(1, status=403, message="not allowed here")
    with pytest.raises(sdk_errors.PermissionDenied, match="not allowed here"):
        mint(w)
    assert mint(w)  # the fault was used up


def test_slow_mints_and_slow_logins(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    emu.faults.mint_delay = 0.3
    started = time.monotonic()
    token = mint(w)
    assert time.monotonic() - started >= 0.3
    emu.faults.login_delay = 0.3
    started = time.monotonic()
    with login(emu, emu.user_name, token):
        assert time.monotonic() - started >= 0.3


def test_refused_logins_window(emu: LakebaseEmulator, w: WorkspaceClient) -> None:
    token = mint(w)
    emu.faults.refuse_logins_for(30)
    assert_refused(emu, emu.user_name, token, LoginFailure.REFUSED)
    emu.faults.refuse_logins_for(0)
    with login(emu, emu.user_name, token):
        pass


def test_fault_arguments_are_checked(emu: LakebaseEmulator) -> None:
    with pytest.raises(ValueError, match="count"):
        emu.faults.fail_mints(0)
    with pytest.raises(ValueError, match="status"):
        emu.faults.fail_mints(1, status=200)
    with pytest.raises(ValueError, match="mint_delay"):
        emu.faults.mint_delay = -1
    with pytest.raises(ValueError, match="token_ttl"):
        emu.token_ttl = 0
    with pytest.raises(ValueError, match="projects/<project>"):
        emu.create_endpoint("primary")


def login_outcome(emu: LakebaseEmulator, token: str) -> str:
    try:
        with login(emu, emu.user_name, token):
            return "ok"
    except psycopg.OperationalError as e:
        return str(e)


def classify(outcome: str) -> str:
    if "the database system is starting up" in outcome:
        return "starting"
    if "Connection refused" in outcome:
        return "refused"
    return outcome


def test_cold_start_refuses_then_answers_57p03_then_recovers(
    emu: LakebaseEmulator, w: WorkspaceClient
) -> None:
    token = mint(w)
    survivor = login(emu, emu.user_name, token)
    future = emu.faults.cold_start(down_seconds=0.6, starting_seconds=0.6)
    states: list[str] = []
    outcomes: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = w.postgres.get_endpoint(name=ENDPOINT).status
        assert status is not None
        assert status.current_state is not None
        states.append(status.current_state.value)
        outcome = classify(login_outcome(emu, token))
        if not outcomes or outcomes[-1] != outcome:
            outcomes.append(outcome)
        if outcome == "ok" and future.done():
            break
        time.sleep(0.05)
    future.result(timeout=10)
    # Refused while down, 57P03 while starting, then in. Between the stand-in listener and the real
    # server there is a gap of milliseconds in which a connection may be refused once more.
    assert outcomes[0] == "refused"
    assert outcomes[1] == "starting"
    assert outcomes[-1] == "ok"
    assert set(outcomes) == {"refused", "starting", "ok"}
    assert outcomes.count("ok") == 1
    assert states[0] == "INIT"
    status = w.postgres.get_endpoint(name=ENDPOINT).status
    assert status is not None
    assert status.current_state is not None
    assert status.current_state.value == "ACTIVE"
    with pytest.raises(psycopg.OperationalError):  # the restart terminated open sessions
        survivor.execute("SELECT 1")
    survivor.close()


# -- hygiene ----------------------------------------------------------------------------------------------


def test_no_secret_in_reprs_or_emulator_logs(
    emu: LakebaseEmulator, w: WorkspaceClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="lakebase_spark.testing")
    token = mint(w)
    _, _, secret = emu.add_service_principal()
    emu.workspace_client("m2m").current_user.me()
    with login(emu, emu.user_name, token):
        pass
    assert_refused(emu, emu.user_name, token + "x", LoginFailure.UNKNOWN)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("lakebase_spark.testing"))
    assert "POST /api/2.0/postgres/credentials -> 200" in ours  # requests are logged ...
    for prefix in SECRET_PREFIXES:  # ... without any credential
        assert prefix not in ours
    texts = [repr(emu), repr(emu.tokens), repr(emu.directory), repr(emu.faults), repr(emu.stats)]
    for text in texts:
        for value in (token, emu.pat, secret):
            assert value not in text
    assert emu.postgres.log_tail(1000).count(token) == 0


@pytest.fixture
def open_workdir() -> Iterator[Path]:
    """A workdir the unprivileged Postgres user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="emu-workdir-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_stop_is_idempotent_and_removes_everything(open_workdir: Path) -> None:
    emulator = LakebaseEmulator(workdir=open_workdir).start()
    root, port = emulator.postgres.root, emulator.postgres.port
    assert root.parent == open_workdir
    assert root.is_dir()
    emulator.stop()
    emulator.stop()
    assert not root.exists()
    with pytest.raises(EmulatorNotRunningError, match="stopped"):
        _ = emulator.host
    with socket.socket() as s:  # nothing listens on the Postgres port any more
        assert s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands Postgres to another OS user")
def test_an_unreachable_workdir_is_explained(tmp_path: Path) -> None:
    tmp_path.chmod(0o700)
    emulator = LakebaseEmulator(workdir=tmp_path)
    with pytest.raises(PostgresStartError, match="every parent directory needs o\\+x"):
        emulator.start()
    assert list(tmp_path.iterdir()) == []  # the half-built server was cleaned up
    emulator.stop()


def test_not_started_emulator_says_so() -> None:
    emulator = LakebaseEmulator()
    with pytest.raises(EmulatorNotRunningError, match="call start"):
        _ = emulator.host
    assert emulator.pat.startswith("dapi")
    emulator.stop()  # stopping an emulator that never started is fine


def test_missing_postgres_binaries_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BINDIR_ENV, "/nonexistent/bin")
    with pytest.raises(PostgresNotFoundError, match="/nonexistent/bin"):
        find_bindir()
    monkeypatch.delenv(BINDIR_ENV)
    assert (find_bindir() / "initdb").is_file()


def test_cli_prints_how_to_connect_and_stops_on_ctrl_c() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-m", "lakebase_spark.testing", "--endpoint", ENDPOINT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        timer = threading.Timer(60, process.kill)
        timer.start()
        for line in process.stdout:
            lines.append(line)
            if "export DATABRICKS_HOST" in line:
                break
        timer.cancel()
        output = "".join(lines)
        assert ENDPOINT in output
        assert "PAT" in output
        assert "throwaway" in output
        host = next(line.split()[-1] for line in lines if "workspace URL" in line)
        pat = next(line.split()[-1] for line in lines if line.strip().startswith("PAT"))
        assert (
            WorkspaceClient(host=host, token=pat).current_user.me().user_name == "lakebase-demo@example.com"
        )
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- token store, with an injected clock ------------------------------------------------------------------


def test_token_store_rules_and_counters() -> None:
    now = [1_000_000.0]
    store = TokenStore(clock=lambda: now[0])
    alice, expires = store.mint("alice", 60)
    assert expires.timestamp() == pytest.approx(1_000_060.0)
    alice2, _ = store.mint("alice", 120)
    bob, _ = store.mint("bob", 60)
    assert store.check("alice", alice)
    assert store.check("alice", alice2)
    assert store.check("bob", bob)
    assert not store.check("alice", bob)
    now[0] += 60
    assert store.verify("alice", alice) is LoginFailure.EXPIRED
    assert store.check("alice", alice2)
    assert store.revoke("alice") == 1  # only alice2 was still valid
    assert store.verify("alice", alice2) is LoginFailure.REVOKED
    assert store.verify("bob", bob) is LoginFailure.EXPIRED
    assert store.verify("bob", "lbtok_x") is LoginFailure.UNKNOWN
    stats = store.stats
    assert (stats.mints, stats.logins_ok, stats.logins_failed) == (3, 4, 1)
    assert stats.failures == {LoginFailure.WRONG_PRINCIPAL: 1}
    assert alice not in repr(store)
    with pytest.raises(ValueError, match="ttl_seconds"):
        store.mint("alice", 0)


# -- LDAP BER codec and server ----------------------------------------------------------------------------


def tlv(tag: int, contents: bytes) -> bytes:
    assert len(contents) < 0x80
    return bytes([tag, len(contents)]) + contents


def bind_bytes(message_id: int = 1, name: bytes = b"uid=alice,ou=lakebase", password: bytes = b"pw") -> bytes:
    op = tlv(0x02, b"\x03") + tlv(0x04, name) + tlv(0x80, password)
    return tlv(0x30, tlv(0x02, bytes([message_id])) + tlv(0x60, op))


def test_ber_decodes_a_simple_bind() -> None:
    request = decode_message(bind_bytes(5))
    assert request == BindRequest(5, 3, "uid=alice,ou=lakebase", "pw")
    assert "pw" not in repr(request)


def test_ber_decodes_long_form_lengths_controls_unbind_and_others() -> None:
    name = b"uid=" + b"a" * 200 + b",ou=lakebase"
    op = tlv(0x02, b"\x03") + b"\x04\x81" + bytes([len(name)]) + name + tlv(0x80, b"secret")
    body = tlv(0x02, b"\x07") + b"\x60\x82" + len(op).to_bytes(2, "big") + op + tlv(0xA0, b"")
    message = b"\x30\x82" + len(body).to_bytes(2, "big") + body
    request = decode_message(message)
    assert isinstance(request, BindRequest)
    assert (request.message_id, request.name, request.password) == (7, name.decode(), "secret")
    assert decode_message(bytes.fromhex("30050201014200")) == UnbindRequest(1)
    search = tlv(0x30, tlv(0x02, b"\x02") + tlv(0x63, b""))
    assert decode_message(search) == UnsupportedRequest(2, 0x63)
    sasl = tlv(0x30, tlv(0x02, b"\x03") + tlv(0x60, tlv(0x02, b"\x03") + tlv(0x04, b"") + tlv(0xA3, b"")))
    assert decode_message(sasl) == BindRequest(3, 3, "", None)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x30",
        b"\x31\x00",  # not a SEQUENCE
        b"\x30\x80\x02\x01\x01\x00\x00",  # indefinite length
        b"\x30\x85\x00\x00\x00\x00\x03",  # five length octets
        b"\x30\x05\x02\x01\x01",  # truncated
        bind_bytes() + b"\x00",  # trailing garbage
        tlv(0x30, tlv(0x02, b"") + tlv(0x42, b"")),  # empty messageID
        tlv(0x30, tlv(0x02, b"\x01\x02\x03\x04\x05") + tlv(0x42, b"")),  # oversized messageID
        tlv(0x30, tlv(0x02, b"\xff") + tlv(0x42, b"")),  # negative messageID
        tlv(0x30, tlv(0x04, b"\x01") + tlv(0x42, b"")),  # messageID not an INTEGER
        tlv(0x30, tlv(0x02, b"\x01") + tlv(0x60, tlv(0x02, b"\x03") + tlv(0x04, b"x") + tlv(0x81, b"pw"))),
        tlv(0x30, tlv(0x02, b"\x01") + tlv(0x60, tlv(0x02, b"\x03") + tlv(0x04, b"\xff") + tlv(0x80, b""))),
        tlv(0x30, tlv(0x02, b"\x01") + tlv(0x1F, b"")),  # multi-octet tag
        tlv(0x30, tlv(0x02, b"\x01") + tlv(0x42, b"") + tlv(0x04, b"")),  # junk after the operation
        bytes(range(256)),
    ],
)
def test_ber_rejects_garbage(data: bytes) -> None:
    with pytest.raises(BerDecodeError):
        decode_message(data)


def test_ber_encodes_bind_responses() -> None:
    assert encode_bind_response(1, SUCCESS) == bytes.fromhex("300c02010161070a010004000400")
    assert encode_bind_response(1, INVALID_CREDENTIALS) == bytes.fromhex("300c02010161070a013104000400")
    # 128 needs a leading zero octet to stay positive; a long diagnostic needs a long-form length.
    long_response = encode_bind_response(128, SUCCESS, "d" * 200)
    assert long_response[:10] == bytes.fromhex("3081d7020200806181d0")
    assert long_response.endswith(b"d" * 200)


def test_read_message_frames_and_bounds_the_stream() -> None:
    left, right = socket.socketpair()
    with left, right:
        message = bind_bytes()
        for i in range(len(message)):  # arrives one octet at a time
            left.sendall(message[i : i + 1])
        assert read_message(right) == message
        left.sendall(b"\x30\x84\x7f\xff\xff\xff")
        with pytest.raises(BerDecodeError, match="exceeds the limit"):
            read_message(right)
        left.close()
        assert read_message(right) is None


@pytest.fixture
def ldap_server() -> Iterator[LdapServer]:
    server = LdapServer(lambda user, password: (user, password) == ("alice", "right"))
    server.start()
    yield server
    server.stop()


UNBIND = bytes.fromhex("30050201094200")


def ldap_bind(port: int, data: bytes) -> bytes | None:
    """Send one bind, read the answer, unbind; the server must then close the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        response = read_message(conn)
        conn.sendall(UNBIND)
        assert conn.recv(1) == b""
        return response


def closed_without_answer(port: int, data: bytes) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        return conn.recv(1) == b""


def test_ldap_server_answers_binds_and_closes_on_garbage(ldap_server: LdapServer) -> None:
    port = ldap_server.port
    assert ldap_bind(port, bind_bytes(1, b"uid=alice,ou=lakebase", b"right")) == encode_bind_response(
        1, SUCCESS
    )
    wrong = ldap_bind(port, bind_bytes(2, b"uid=alice,ou=lakebase", b"wrong"))
    assert wrong == encode_bind_response(2, INVALID_CREDENTIALS)
    other_dn = ldap_bind(port, bind_bytes(3, b"cn=alice,dc=example", b"right"))
    assert other_dn == encode_bind_response(3, INVALID_CREDENTIALS)
    empty_password = ldap_bind(port, bind_bytes(4, b"uid=alice,ou=lakebase", b""))
    assert empty_password == encode_bind_response(4, INVALID_CREDENTIALS)
    assert closed_without_answer(port, b"GET / HTTP/1.1\r\n\r\n")
    assert closed_without_answer(port, b"\x30\x84\x7f\xff\xff\xff")
    assert closed_without_answer(port, tlv(0x30, tlv(0x02, b"\x02") + tlv(0x63, b"")))  # a search


def test_ldap_server_refuses_when_the_validator_breaks(caplog: pytest.LogCaptureFixture) -> None:
    def broken(user: str, password: str) -> bool:
        raise RuntimeError("validator bug")

    server = LdapServer(broken)
    server.start()
    try:
        response = ldap_bind(server.port, bind_bytes(9, b"uid=alice,ou=lakebase", b"right"))
        assert response == encode_bind_response(9, INVALID_CREDENTIALS)
    finally:
        server.stop()
    assert "validator failed" in caplog.text
    assert "right" not in caplog.text
