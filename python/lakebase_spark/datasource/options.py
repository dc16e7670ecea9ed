"""The ``lakebase`` data source's options: what to read or write, and how its Python workers log in.

Target options are those of ``lakebase_options`` (``endpoint`` or ``instance``, ``database``) and
Spark's JDBC names where they mean the same (``dbtable``, ``query``, ``numPartitions``,
``partitionColumn``). :func:`source_options`, run where the job is planned (a notebook, a laptop),
adds where Postgres listens, the role, and the credentials the workers use; options from
``lakebase_options`` (the JDBC helper) work as well, with its broker.

Credentials (README, "The jar-free path"): ``broker`` (the driver's token broker, reachable from
the executors: classic clusters, standard access mode, local Spark and Connect), ``token`` (a
credential minted here that travels with the job as a session file: serverless and Databricks
Connect from a laptop; good for logins within its 60 minutes), or a Postgres password role (``user``
and ``password``). Option keys that hold a secret contain ``secret`` or ``password``, which Spark
redacts in classic plans, the UI and event logs; Spark Connect logs a plan's options unredacted, so a
token minted here travels as a session file, never as an option.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit

from ..errors import LakebaseSparkError
from ..names import TableName
from ..postgres.snapshots import SNAPSHOT
from ..spark.options import (
    BROKER_FINGERPRINT,
    BROKER_SECRET,
    BROKER_SECRET_FILE,
    BROKER_TIMEOUT_MS,
    BROKER_URL,
    COLD_START_TIMEOUT_MS,
    CONNECTION_LIMIT_TIMEOUT_MS,
    ENDPOINT,
    INSTANCE,
    JDBC_SETTINGS,
    LakebaseOptions,
)
from ..targets import DEFAULT_DATABASE, Address, Target
from .logins import BrokerTokens, Credentials, Login, PasswordRole, Sealed, ShippedToken, ship_secret

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from ..serving.service import BrokerService

__all__ = [
    "FORMAT",
    "KNOWN_OPTIONS",
    "PREDICATES",
    "SourceOptions",
    "SourceOptionsError",
    "check_known",
    "source_options",
]

#: ``spark.read.format(FORMAT)``.
FORMAT = "lakebase"
# Where Postgres listens and as whom (set by source_options, so no worker needs the workspace API).
HOST, PORT, USER = "host", "port", "user"
PASSWORD = "password"  # noqa: S105 - an option name
#: A credential minted where the job was planned, and its expiry (seconds since the epoch).
TOKEN_SECRET = "lakebase.token.secret"  # noqa: S105 - an option name; "secret" makes Spark redact it
TOKEN_EXPIRES = "lakebase.token.expires"  # noqa: S105 - an option name
# The names of session files holding those secrets (logins.Sealed: why files, not options).
TOKEN_FILE = "lakebase.token.file"  # noqa: S105 - an option name
PASSWORD_FILE = "lakebase.password.file"  # noqa: S105 - an option name

#: The options each use of the source takes. Unknown ones are refused, not ignored as Spark's JDBC
#: source ignores them: a misspelt ``upsertKey`` would append instead of upserting.
_TARGET = (
    "endpoint", "instance", ENDPOINT, INSTANCE, "database", HOST, PORT, USER, PASSWORD, "dbtable",
    TOKEN_SECRET, TOKEN_EXPIRES, TOKEN_FILE, PASSWORD_FILE,
    BROKER_URL, BROKER_SECRET, BROKER_SECRET_FILE, BROKER_FINGERPRINT, BROKER_TIMEOUT_MS,
    # lakebase_options' keys, so its options work here too (the JVM's login waits do not apply)
    COLD_START_TIMEOUT_MS, CONNECTION_LIMIT_TIMEOUT_MS, *JDBC_SETTINGS,
)  # fmt: skip
#: A JSON list of SQL predicates over the relation: one partition each.
PREDICATES = "predicates"
#: lakebase_spark.read's snapshot, and Spark's JDBC names where they mean the same.
READ_OPTIONS = ("query", "numPartitions", "partitionColumn", PREDICATES, "pushFilters", SNAPSHOT)
WRITE_OPTIONS = ("upsertKey", "orderBy", "writeId", "atomic")
KNOWN_OPTIONS: dict[str, tuple[str, ...]] = {
    "read": (*_TARGET, *READ_OPTIONS),
    "write": (*_TARGET, *WRITE_OPTIONS),
    # Spark passes a stream's checkpoint location among its sink's options.
    "stream write": (*_TARGET, "checkpointLocation"),
    "stream read": (
        *_TARGET,
        "mode",
        "slotName",
        "publication",
        "startingPosition",
        "maxRowsPerTrigger",
        "numPartitions",
    ),
}

Credentials_ = Literal["auto", "broker", "token"]
#: A token that travels with a job is minted anew unless the cached one has this long to live.
SHIPPED_MIN_LIFE = 45 * 60.0


class SourceOptionsError(LakebaseSparkError, ValueError):
    """The ``lakebase`` data source's options are missing something or contradict each other."""


def source_options(
    endpoint: str | None = None,
    *,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    credentials: Credentials_ = "auto",
    workspace_client: WorkspaceClient | None = None,
    broker: BrokerService | None = None,
    **extra: object,
) -> LakebaseOptions:
    """Options for ``spark.read.format("lakebase")`` / ``df.write.format("lakebase")``, built where the
    job is planned: the target, its host and the role, and the workers' credentials.

    ``credentials``: ``"broker"`` (executors ask this process's token broker; tokens are refreshed, jobs
    may run for days), ``"token"`` (a credential minted now travels with the job: for executors that
    cannot reach this process, e.g. serverless or Databricks Connect from a laptop; logins must happen
    within its 60 minutes), or ``"auto"``: the broker where the active session's executors can reach
    it, else a token. For batch jobs longer than an hour without a reachable broker, pass a Postgres
    password role instead: ``user=...`` and ``password=...`` (from a Databricks secret); the workspace
    is then asked only where the endpoint listens (unless ``host=`` is given).

    Secrets (the token, the broker's secret, a password) reach the workers as session files
    (``addArtifacts``), never as option values: the options name the files.
    """
    from ..serving.service import shared_broker_service
    from ..sessions import active_session, broker_bind_host

    target = Target.of(endpoint, instance)
    if credentials not in ("auto", "broker", "token"):
        raise SourceOptionsError(f"credentials must be 'auto', 'broker' or 'token', got {credentials!r}")
    options: dict[str, object] = {target.kind: target.name, "database": database}
    session = active_session()
    if PASSWORD in extra:  # a password role: nothing to mint
        if USER not in extra:
            raise SourceOptionsError("password= goes with user=: the Postgres password role to log in as")
        extra = dict(extra)
        extra[PASSWORD_FILE] = ship_secret(session, str(extra.pop(PASSWORD)))
        if HOST not in extra:  # where Postgres listens: one workspace API call, no credential minted
            from databricks.sdk import WorkspaceClient

            workspace = (
                broker.broker.workspace if broker is not None else workspace_client or WorkspaceClient()
            )
            address = target.resolve(workspace)
            options.update({HOST: address.host, PORT: address.port})
        options.update(extra)
        return _options(options)
    if credentials == "auto":
        try:
            broker_bind_host(session)
            credentials = "broker"
        except LakebaseSparkError:  # a Connect client whose driver is elsewhere: executors cannot reach us
            credentials = "token"
    if credentials == "broker":
        service = broker.start() if broker is not None else shared_broker_service(workspace_client)
        tokens = service.broker
        options.update(
            {
                BROKER_URL: service.url,
                BROKER_SECRET_FILE: ship_secret(session, service.secret.reveal()),
                BROKER_FINGERPRINT: service.fingerprint,
                BROKER_TIMEOUT_MS: int((tokens.retry_budget + 30) * 1000),
            }
        )
    else:
        from ..tokens.broker import TokenBroker

        tokens = broker.broker if broker is not None else TokenBroker(workspace_client)
        credential = tokens.credential(**target.keywords())
        if credential.expires_at - time.time() < SHIPPED_MIN_LIFE:  # a job gets most of a token's life
            credential = tokens.credential(**target.keywords(), force=True)
        name = ship_secret(session, credential.token.reveal())
        options.update({TOKEN_FILE: name, TOKEN_EXPIRES: f"{credential.expires_at:.3f}"})
    address = target.resolve(tokens.workspace)
    options.update({HOST: address.host, PORT: address.port, USER: tokens.principal})
    options.update(extra)
    return _options(options)


def check_known(options: Mapping[str, str], use: str) -> None:
    """Refuse an option the source does not take for ``use`` ("read", "write", "stream write") before
    anything moves, naming it and the closest known one."""
    import difflib

    known = {k.lower(): k for k in KNOWN_OPTIONS[use]}
    unknown = sorted(k for k in options if k.lower() not in known)
    if not unknown:
        return
    name = unknown[0]
    other = [u for u in KNOWN_OPTIONS if u != use and name.lower() in {k.lower() for k in KNOWN_OPTIONS[u]}]
    if other:
        why = f"it is an option of a {other[0]}"
    else:
        close = difflib.get_close_matches(name.lower(), list(known), n=1, cutoff=0.6)
        why = f"did you mean {known[close[0]]!r}?" if close else "no option of that name exists"
    listed = ", ".join(k for k in KNOWN_OPTIONS[use] if not k.startswith("lakebase.") and k not in _TARGET)
    raise SourceOptionsError(
        f"format('lakebase') takes no option {name!r} for a {use} ({why}); nothing was read or written. "
        f"Its {use} options: {listed}, and the target and credentials from source_options(...)"
        + (f"; also unknown: {', '.join(map(repr, unknown[1:]))}" if len(unknown) > 1 else "")
    )


def _options(options: Mapping[str, object]) -> LakebaseOptions:
    return LakebaseOptions({k: str(v) for k, v in options.items() if v is not None})


@dataclass(frozen=True)
class SourceOptions:
    """The options a ``lakebase`` read or write was given, checked. Case-insensitive, as Spark's are."""

    target: Target
    database: str
    table: TableName | None
    query: str | None
    login: Login | None
    raw: Mapping[str, str]

    @classmethod
    def parse(cls, options: Mapping[str, str]) -> SourceOptions:
        raw = {k.lower(): v for k, v in options.items()}
        endpoint = raw.get("endpoint") or raw.get("lakebase.endpoint")
        instance = raw.get("instance") or raw.get("lakebase.instance")
        if not endpoint and not instance:
            raise SourceOptionsError(
                "the lakebase data source needs option endpoint ('projects/<p>/branches/<b>/endpoints/<e>') "
                "or instance; build the options with lakebase_spark.source_options(...)"
            )
        target = Target.of(endpoint or None, instance or None)
        url_host, url_port, url_database = _from_jdbc_url(raw.get("url"))
        database = raw.get("database") or url_database or DEFAULT_DATABASE
        table_text, query = raw.get("dbtable"), raw.get("query")
        if table_text and query:
            raise SourceOptionsError("give option dbtable or option query, not both")
        table = TableName.parse(table_text) if table_text else None
        host = raw.get(HOST) or url_host
        login = None
        if host:
            port = int(raw.get(PORT) or url_port or Address(host).port)
            user = raw.get(USER)
            if not user:
                raise SourceOptionsError(
                    "option user (the Postgres role) is missing: use source_options(...)"
                )
            login = Login(target, database, Address(host, port), user, _credentials(raw))
        return cls(target, database, table, query, login, raw)

    def require_login(self) -> Login:
        """How the workers log in, or the error naming what builds it."""
        if self.login is None:
            raise SourceOptionsError(
                "the lakebase data source needs options host and user: use source_options(...)"
            )
        return self.login

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.raw.get(key.lower(), default)

    def integer(self, key: str, default: int) -> int:
        value = self.get(key)
        if value is None:
            return default
        try:
            return int(value)
        except ValueError:
            raise SourceOptionsError(f"option {key} must be a whole number, got {value!r}") from None

    def flag(self, key: str) -> bool:
        value = (self.get(key) or "false").strip().lower()
        if value not in ("true", "false"):
            raise SourceOptionsError(f"option {key} must be true or false, got {value!r}")
        return value == "true"

    def __repr__(self) -> str:
        return f"SourceOptions(target={self.target}, database={self.database!r}, table={self.table})"


def _credentials(raw: Mapping[str, str]) -> Credentials:
    password = _sealed(raw, PASSWORD, PASSWORD_FILE)
    if password is not None:
        return PasswordRole(password)
    token = _sealed(raw, TOKEN_SECRET, TOKEN_FILE)
    if token is not None:
        try:
            expires = float(raw.get(TOKEN_EXPIRES) or "")
        except ValueError:
            raise SourceOptionsError(f"option {TOKEN_EXPIRES} must be seconds since the epoch") from None
        return ShippedToken(token, expires)
    secret = _sealed(raw, BROKER_SECRET, BROKER_SECRET_FILE)
    if raw.get(BROKER_URL) and secret is not None:
        timeout = float(raw.get(BROKER_TIMEOUT_MS) or 330_000) / 1000
        return BrokerTokens(raw[BROKER_URL], secret, raw.get(BROKER_FINGERPRINT), timeout)
    raise SourceOptionsError(
        "the lakebase data source has no credentials: build its options with "
        "lakebase_spark.source_options(...) (a token broker or a token minted for the job), or pass user and "
        "password of a Postgres password role"
    )


def _sealed(raw: Mapping[str, str], value_key: str, file_key: str) -> Sealed | None:
    """A secret given as an option's value (what lakebase_options sets) or as a session file's name."""
    if raw.get(value_key):
        return Sealed(raw[value_key])
    if raw.get(file_key):
        return Sealed(file=raw[file_key])
    return None


def _from_jdbc_url(url: str | None) -> tuple[str | None, int | None, str | None]:
    """Host, port and database of ``jdbc:postgresql://host:port/db?...`` (what lakebase_options sets)."""
    if not url or not url.startswith("jdbc:postgresql://"):
        return None, None, None
    parts = urlsplit(url[len("jdbc:") :])
    return parts.hostname, parts.port, unquote(parts.path.lstrip("/")) or None


def describe(options: Any) -> str:
    """What to show of options in a message: never a value that could be a secret."""
    return ", ".join(sorted(k for k in options if "secret" not in k.lower() and "password" not in k.lower()))
