"""The local Lakebase emulator: a workspace API and a real Postgres server with Lakebase login rules."""

from __future__ import annotations

import atexit
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from enum import Enum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal

from .api import WorkspaceApi
from .errors import EmulatorNotRunningError
from .faults import Faults
from .identity import ACCESS_TOKEN_PREFIX, CLIENT_SECRET_PREFIX, PAT_PREFIX, Directory
from .ldap import LdapServer
from .postgres import PostgresServer
from .resources import Resources
from .standby import StandbyServer
from .stats import ApiStats
from .tokens import TOKEN_PREFIX, LoginFailure, TokenStore

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["DEFAULT_ENDPOINT", "DEFAULT_INSTANCE", "SECRET_PREFIXES", "LakebaseEmulator"]

DEFAULT_ENDPOINT: Final = "projects/demo/branches/main/endpoints/primary"
DEFAULT_INSTANCE: Final = "demo-instance"
# Every secret the emulator issues starts with one of these: grep logs, plans and messages for them.
SECRET_PREFIXES: Final = (TOKEN_PREFIX, PAT_PREFIX, CLIENT_SECRET_PREFIX, ACCESS_TOKEN_PREFIX)

_MAX_IDENTIFIER_BYTES: Final = 63  # Postgres silently truncates longer names (NAMEDATALEN - 1)


class _State(Enum):
    NEW = "new"
    STARTED = "started"
    STOPPED = "stopped"


def _check_identifier(kind: str, name: str) -> None:
    if not name or len(name.encode()) > _MAX_IDENTIFIER_BYTES or "\0" in name:
        raise ValueError(
            f"{kind} {name!r} must be 1 to {_MAX_IDENTIFIER_BYTES} bytes without NUL"
            " (Postgres would truncate a longer name)"
        )


class LakebaseEmulator:
    """A local stand-in for a Databricks workspace with Lakebase, for tests and demos.

    Real parts only: the real ``databricks-sdk`` talks HTTP to :attr:`host`, and clients log in to a real
    PostgreSQL server over TLS with database tokens minted through that API. Lakebase semantics hold at
    login: TLS required, several tokens valid at once, each bound to its principal, expiry checked only at
    login (open connections outlive their token), configurable (even very short) TTLs, and faults on demand.
    Every endpoint and instance points at the same Postgres server; databases separate data.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` (idempotent, also run at exit).

    Parameters
    ----------
    token_ttl
        Lifetime cap of minted database credentials in seconds (settable at runtime; a request may ask
        for less). Lakebase's own default is 3600.
    databases
        Databases to create; every principal with a role may use all of them.
    user_name
        The default user: has a PAT (:attr:`pat`) and a Postgres role.
    workdir
        Parent directory of the server's temporary directory (default: the system temp dir).
    clock
        Seconds since the epoch for database-token expiry; inject a fake to test expiry without sleeping.
    max_connections
        Postgres' connection limit (3 of them reserved for the superuser). A Lakebase compute allows
        about 100 per 0.5 CU; set it low to see SQLSTATE 53300 "too many clients", as a wide Spark
        stage does on a small compute.
    """

    def __init__(
        self,
        *,
        token_ttl: float = 3600.0,
        databases: Sequence[str] = ("databricks_postgres",),
        user_name: str = "lakebase-demo@example.com",
        workdir: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.time,
        max_connections: int = 200,
    ) -> None:
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 5:
            raise ValueError(f"max_connections must be an int of at least 5, got {max_connections!r}")
        if isinstance(databases, str):
            raise TypeError(
                f"databases must be a sequence of names, not the string {databases!r}; wrap it: [...]"
            )
        for database in databases:
            _check_identifier("database name", database)
        _check_identifier("user_name", user_name)
        self.token_ttl = token_ttl
        self.max_connections = max_connections
        self.tokens = TokenStore(clock=clock)
        self.faults = Faults()
        self.stats = ApiStats()
        self.directory = Directory()
        self.resources = Resources()
        self.workspace_id = str(secrets.randbelow(9 * 10**15) + 10**15)  # 16 digits, like real ones
        self.account_id = str(uuid.uuid4())
        self._workdir = workdir
        # Guards the lifecycle and the two lists below.
        self._lock = threading.RLock()
        self._state = _State.NEW
        self._databases: list[str] = list(dict.fromkeys(databases))
        self._roles: list[str] = []  # principals that have (or get, at start) a Postgres role
        self._ldap: LdapServer | None = None
        self._postgres: PostgresServer | None = None
        self._standby: StandbyServer | None = None
        self._api: WorkspaceApi | None = None
        self._default_sp: tuple[str, str] | None = None  # (client id, secret) for workspace_client("m2m")
        self.user_name = user_name
        self.pat = self.add_user(user_name)

    def __repr__(self) -> str:
        where = f"host={self._api.url!r}, " if self._api is not None else ""
        return f"LakebaseEmulator({where}user_name={self.user_name!r}, state={self._state.value})"

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> LakebaseEmulator:
        """Start the LDAP, Postgres and API servers; return ``self``. A no-op if already started."""
        with self._lock:
            if self._state is _State.STARTED:
                return self
            if self._state is _State.STOPPED:
                raise EmulatorNotRunningError(
                    "this emulator was stopped and cannot restart; create a new one"
                )
            try:
                self._ldap = LdapServer(self._check_login)
                self._ldap.start()
                self._postgres = PostgresServer(
                    ldap_port=self._ldap.port,
                    workdir=self._workdir,
                    settings={"max_connections": str(self.max_connections)},
                )
                self._postgres.start()
                for database in self._databases:
                    self._postgres.create_database(database)
                for role in self._roles:
                    self._create_role(role)
                self._api = WorkspaceApi(
                    directory=self.directory,
                    resources=self.resources,
                    tokens=self.tokens,
                    faults=self.faults,
                    stats=self.stats,
                    token_ttl=lambda: self.token_ttl,
                    workspace_id=self.workspace_id,
                    account_id=self.account_id,
                )
                self._api.start()
                self.faults.bind_server(self._postgres)
            except BaseException:
                self._shutdown()
                raise
            self._state = _State.STARTED
            atexit.register(self.stop)
            return self

    def stop(self) -> None:
        """Stop every server and delete the temporary directory; idempotent."""
        with self._lock:
            if self._state is _State.STOPPED:
                return
            self._state = _State.STOPPED
            atexit.unregister(self.stop)
            self._shutdown()

    def __enter__(self) -> LakebaseEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _shutdown(self) -> None:
        self.faults.bind_server(None)
        api, postgres, ldap, standby = self._api, self._postgres, self._ldap, self._standby
        try:
            if api is not None:
                api.stop()
            if standby is not None:
                standby.stop()
        finally:
            try:
                if postgres is not None:
                    postgres.stop()
            finally:
                if ldap is not None:
                    ldap.stop()

    def _running(self) -> tuple[WorkspaceApi, PostgresServer]:
        if self._state is not _State.STARTED or self._api is None or self._postgres is None:
            raise EmulatorNotRunningError(
                f"the emulator is {self._state.value}; call start() (or use it as a context manager) first"
            )
        return self._api, self._postgres

    # -- addresses ------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The workspace URL, ``http://127.0.0.1:<port>``."""
        return self._running()[0].url

    @property
    def postgres(self) -> PostgresServer:
        """The Postgres server (``port``, ``cert_file`` for ``sslrootcert``, ``log_tail()``, ...)."""
        return self._running()[1]

    @property
    def postgres_host(self) -> str:
        """``127.0.0.1:<port>``: the host every endpoint and instance reports (port included)."""
        return self._running()[1].address

    @property
    def token_ttl(self) -> float:
        """Lifetime cap of new database credentials, in seconds."""
        return self._token_ttl

    @token_ttl.setter
    def token_ttl(self, seconds: float) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ValueError(f"token_ttl must be a positive number of seconds, got {seconds!r}")
        self._token_ttl = float(seconds)

    def admin_conninfo(self, dbname: str = "databricks_postgres") -> str:
        """libpq conninfo for the Postgres superuser over a private Unix socket, for test setup."""
        return self._running()[1].admin_conninfo(dbname)

    # -- principals -----------------------------------------------------------------------------------

    def add_user(self, user_name: str, *, role: bool = True) -> str:
        """Register a user (idempotent) and return its PAT; with ``role``, give it a Postgres role."""
        _check_identifier("user_name", user_name)
        principal, pat = self.directory.add_user(user_name)
        if role:
            self._ensure_role(principal.name)
        return pat

    def add_service_principal(
        self, *, role: bool = True, display_name: str | None = None
    ) -> tuple[str, str, str]:
        """Register a service principal: ``(application_id, client_id, client_secret)``.

        As on Databricks the client id is the application id (a UUID), which is also the principal's
        ``userName`` and its Postgres role name.
        """
        principal, secret = self.directory.add_service_principal(display_name)
        if role:
            self._ensure_role(principal.name)
        return principal.name, principal.name, secret

    def _ensure_role(self, name: str) -> None:
        with self._lock:
            if name in self._roles:
                return
            self._roles.append(name)
            if self._state is _State.STARTED:
                self._create_role(name)

    def _create_role(self, name: str) -> None:
        postgres = self._postgres
        if postgres is None:
            raise EmulatorNotRunningError("Postgres is not started; call start() first")
        # As on Lakebase, the project owner's OAuth role (the emulator's own user) has REPLICATION,
        # which change streams need; other principals' roles do not.
        postgres.create_role(name, replication=name == self.user_name)
        for database in self._databases:
            postgres.grant_database(name, database)

    # -- resources ------------------------------------------------------------------------------------

    def create_endpoint(self, name: str = DEFAULT_ENDPOINT) -> str:
        """Register a Lakebase Autoscaling endpoint (idempotent); return its host ``127.0.0.1:<port>``."""
        address = self.postgres_host
        return self.resources.add_endpoint(name, address).host

    def create_replica(self, name: str) -> str:
        """Register a read replica endpoint (``ENDPOINT_TYPE_READ_ONLY``, idempotent) served by a hot
        standby of the emulator's Postgres (started on first use); return its host ``127.0.0.1:<port>``."""
        return self.resources.add_endpoint(name, self.standby.address, read_only=True).host

    @property
    def standby(self) -> StandbyServer:
        """The hot standby (streaming replication from the primary), started on first use."""
        with self._lock:
            _, primary = self._running()
            if self._standby is None:
                standby = StandbyServer(primary, workdir=self._workdir)
                standby.start()
                self._standby = standby
            return self._standby

    def revoke_can_use(self, *, project: str | None = None, instance: str | None = None) -> None:
        """Revoke CAN USE on a project (every endpoint in it) or an instance: credential requests for it
        get 403 PERMISSION_DENIED, as when a workspace admin removes the grant."""
        self.resources.set_can_use(_scope(project, instance), allowed=False)

    def grant_can_use(self, *, project: str | None = None, instance: str | None = None) -> None:
        """Give back CAN USE taken by :meth:`revoke_can_use`."""
        self.resources.set_can_use(_scope(project, instance), allowed=True)

    def create_instance(self, name: str = DEFAULT_INSTANCE) -> str:
        """Register a Lakebase Provisioned instance (idempotent); return its ``read_write_dns``."""
        address = self.postgres_host
        return self.resources.add_instance(name, address, creator=self.user_name).read_write_dns

    def create_password_role(self, name: str, password: str) -> None:
        """A Postgres password role (what Lakebase offers jobs that cannot refresh a token hourly)."""
        _check_identifier("role name", name)
        if self._postgres is None:
            raise RuntimeError("the emulator is not started")
        self._postgres.create_password_role(name, password)

    def create_database(self, name: str) -> None:
        """Create a database (idempotent) and grant it to every principal that has a role."""
        _check_identifier("database name", name)
        with self._lock:
            if name not in self._databases:
                self._databases.append(name)
            if self._state is not _State.STARTED or self._postgres is None:
                return
            self._postgres.create_database(name)
            for role in self._roles:
                self._postgres.grant_database(role, name)

    @property
    def databases(self) -> list[str]:
        """Databases of the emulator (a copy)."""
        with self._lock:
            return list(self._databases)

    # -- logins ---------------------------------------------------------------------------------------

    def _check_login(self, user: str, password: str) -> bool:
        """The LDAP server's validator: fault injection first, then the token store."""
        delay = self.faults.login_delay
        if delay > 0:
            time.sleep(delay)
        if self.faults.logins_refused:
            self.tokens.record_failure(LoginFailure.REFUSED)
            return False
        return self.tokens.check(user, password)

    # -- SDK ------------------------------------------------------------------------------------------

    def workspace_client(
        self,
        auth: Literal["pat", "m2m"] = "pat",
        *,
        token: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        retry_timeout_seconds: int | None = None,
    ) -> WorkspaceClient:
        """A real ``databricks.sdk.WorkspaceClient`` for this emulator.

        ``"pat"`` uses ``token`` (default: the default user's PAT). ``"m2m"`` uses OAuth client
        credentials: ``client_id``/``client_secret``, or a service principal created on first use.
        The auth type is pinned, so ``DATABRICKS_*`` variables in the environment cannot switch it.
        """
        from databricks.sdk import WorkspaceClient
        from databricks.sdk.config import Config

        options: dict[str, Any] = {"host": self.host}
        if retry_timeout_seconds is not None:
            options["retry_timeout_seconds"] = retry_timeout_seconds
        if auth == "pat":
            options.update(auth_type="pat", token=token or self.pat)
        elif auth == "m2m":
            if client_id is None:
                client_id, client_secret = self._default_service_principal()
            elif client_secret is None:
                raise ValueError(f"client_secret is required with client_id {client_id!r}")
            options.update(auth_type="oauth-m2m", client_id=client_id, client_secret=client_secret)
        else:
            raise ValueError(f"auth must be 'pat' or 'm2m', got {auth!r}")
        return WorkspaceClient(config=Config(**options))

    def _default_service_principal(self) -> tuple[str, str]:
        with self._lock:
            if self._default_sp is None:
                _, client_id, secret = self.add_service_principal(display_name="lakebase-emulator-default-sp")
                self._default_sp = (client_id, secret)
            return self._default_sp


def _scope(project: str | None, instance: str | None) -> str:
    if (project is None) == (instance is None):
        raise ValueError("give exactly one of project= and instance=")
    return f"project {project}" if project is not None else f"instance {instance}"
