"""How a Python worker of the ``lakebase`` data source logs in to Lakebase, with no JVM and no jar.

The data source's planning (on the driver, or on a Spark Connect server's driver) and its tasks (on
executors) run in Python workers that may have no Databricks identity. A :class:`Login` travels
inside the pickled reader or writer and says where to connect and where the password comes from:

- :class:`BrokerTokens`: the driver's token broker (the one ``lakebase_options`` starts), over HTTP(S)
  with its secret and pinned certificate, as the JVM provider asks it; tokens are refreshed as usual;
- :class:`ShippedToken`: a database credential minted where the job was planned (the client, e.g. a
  serverless notebook or Databricks Connect on a laptop), good for logins until it expires (60 min);
- :class:`PasswordRole`: a Postgres password role (its password kept in a Databricks secret), for
  batch jobs that outlive a token where no broker is reachable.

Secrets here are :class:`Sealed`: unlike :class:`~lakebase_spark.tokens.credentials.Secret` they may be
pickled (they must reach the executors), but they never print.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ..errors import BrokerError, CredentialError
from ..postgres.connection import APPLICATION_NAME, login, psycopg_params
from ..spark._session_files import ship_secret
from ..targets import Address, Target
from ..tokens.credentials import Credential, Secret

if TYPE_CHECKING:
    import psycopg

__all__ = ["BrokerTokens", "Login", "PasswordRole", "Sealed", "ShippedToken", "ship_secret"]

#: A shipped token is not used for a login in its last minute (a login takes time).
SHIPPED_LOGIN_MARGIN = 60.0
BROKER_TIMEOUT = 330.0


class Sealed:
    """A secret that travels inside a pickled reader or writer to the executors, and never prints.

    It holds the secret itself, or the name of a file the session ships to every node
    (:func:`ship_secret`): the way in for Spark Connect, which writes each operation's plan, options
    included, unredacted into the event log (``SparkListenerConnectOperationStarted``).
    """

    __slots__ = ("_file", "_value")

    def __init__(self, value: str | None = None, *, file: str | None = None) -> None:
        if not value and not file:
            raise ValueError("a Sealed secret cannot be empty")
        self._value = value or None
        self._file = file

    def reveal(self) -> str:
        if self._value is not None:
            return self._value
        from pyspark import SparkFiles

        try:
            with open(SparkFiles.get(self._file or ""), encoding="utf-8") as f:
                return f.read()
        except OSError:
            raise CredentialError(
                f"the session file {self._file} that carries this job's secret is not on this node: build "
                "the options with lakebase_spark.source_options(...) in the session that runs the job"
            ) from None

    def read_here(self) -> Sealed:
        """This secret holding its value: for a writer pickled where the session's files are readable and
        run where they are not (a stream's tasks under Spark Connect, which do not see session files)."""
        return self if self._value is not None else Sealed(self.reveal())

    def __repr__(self) -> str:
        return "Sealed('***')"

    __str__ = __repr__

    def __getstate__(self) -> tuple[str | None, str | None]:
        return self._value, self._file

    def __setstate__(self, state: tuple[str | None, str | None]) -> None:
        self._value, self._file = state


@dataclass(frozen=True)
class BrokerTokens:
    """Tokens from the driver's broker (``GET /v1/token``), cached per worker process until refresh time."""

    url: str
    secret: Sealed = field(repr=False)
    fingerprint: str | None
    timeout: float = BROKER_TIMEOUT

    def credential(self, target: Target, refused: str | None = None) -> Credential:
        key = (self.url, target.kind, target.name)
        now = time.time()
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
        if cached is not None and refused is None and now < cached.refresh_at:
            return cached
        if (
            cached is not None
            and refused is not None
            and refused != cached.digest()
            and now < cached.refresh_at
        ):
            return cached  # another task already replaced the refused token
        fetched = self._fetch(target, refused)
        with _CACHE_LOCK:
            _CACHE[key] = fetched
        return fetched

    def _fetch(self, target: Target, refused: str | None) -> Credential:
        from ..serving.service import ERROR, EXPIRES_IN_MS, REFRESH_IN_MS, REFUSED, TOKEN, TOKEN_PATH

        parts = urlsplit(self.url)
        query = f"{target.kind}={quote(target.name, safe='')}" + (f"&{REFUSED}={refused}" if refused else "")
        try:
            conn = self._connection(
                parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
            )
            try:
                conn.request(
                    "GET",
                    f"{parts.path}{TOKEN_PATH}?{query}",
                    headers={
                        "Authorization": f"Bearer {self.secret.reveal()}",
                        "Accept": "application/json",
                    },
                )
                answer = conn.getresponse()
                body = json.loads(answer.read() or b"{}")
            finally:
                conn.close()
        except (OSError, ValueError) as e:
            raise BrokerError(
                f"the token broker at {self.url} is unreachable from this Python worker ({type(e).__name__}: "
                f"{e}); it runs in the Spark driver's Python process, so the session that built these "
                "options must still run and this host must reach the driver; where executors cannot reach "
                "it (serverless, Databricks Connect from a laptop), build the options with "
                "credentials='token' or use a Postgres password role"
            ) from None
        if answer.status != 200:
            raise CredentialError(
                f"the token broker at {self.url} answered HTTP {answer.status}: "
                f"{str(body.get(ERROR, ''))[:500]}"
            )
        now = time.time()
        expires = now + int(body[EXPIRES_IN_MS]) / 1000
        return Credential(
            token=Secret(str(body[TOKEN])),
            principal="",
            expires_at=expires,
            minted_at=now,
            refresh_at=now + int(body.get(REFRESH_IN_MS, 0)) / 1000,
        )

    def _connection(self, host: str, port: int) -> http.client.HTTPConnection:
        if not self.url.startswith("https"):
            return http.client.HTTPConnection(host, port, timeout=self.timeout)
        # Self-signed, made at the broker's start: pinned by its SHA-256 fingerprint, as the JVM pins it.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
        conn.connect()
        assert conn.sock is not None
        presented = conn.sock.getpeercert(binary_form=True) or b""
        if hashlib.sha256(presented).hexdigest() != (self.fingerprint or "").lower():
            conn.close()
            raise ssl.SSLError("the broker's certificate does not match lakebase.broker.fingerprint")
        return conn


_CACHE: dict[tuple[str, str, str], Credential] = {}
_CACHE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ShippedToken:
    """A database credential minted where the job was planned, carried by the job: no broker needed,
    good until it expires (Lakebase tokens live 60 minutes and are checked at login only)."""

    token: Sealed = field(repr=False)
    expires_at: float

    def credential(self, target: Target, refused: str | None = None) -> Credential:
        now = time.time()
        if refused is not None or now > self.expires_at - SHIPPED_LOGIN_MARGIN:
            expired = datetime.fromtimestamp(self.expires_at, timezone.utc)
            why = (
                "was refused by the database" if refused is not None else f"expired at {expired:%H:%M:%S} UTC"
            )
            raise CredentialError(
                f"the database credential this job carries {why}, and nothing here can mint another: it "
                "was minted when the job was planned, where executors cannot reach a token broker, and "
                "Lakebase credentials live 60 minutes. Run longer jobs with a Postgres password role "
                "(options user and password, the password from a Databricks secret), split them into "
                "shorter ones, or run where executors reach the broker (a classic cluster)"
            )
        return Credential(
            token=Secret(self.token.reveal()),
            principal="",
            expires_at=self.expires_at,
            minted_at=now,
            refresh_at=self.expires_at,
        )


@dataclass(frozen=True)
class PasswordRole:
    """A Postgres password role's password (e.g. read from a Databricks secret): it does not expire."""

    password: Sealed = field(repr=False)

    def credential(self, target: Target, refused: str | None = None) -> Credential:
        if refused is not None:
            raise CredentialError(
                "the database refused the password of this Postgres role: check the "
                "role's name (option user) and its password (option password)"
            )
        return Credential(
            token=Secret(self.password.reveal()),
            principal="",
            expires_at=float("inf"),
            minted_at=0.0,
            refresh_at=float("inf"),
        )


Credentials = BrokerTokens | ShippedToken | PasswordRole


@dataclass(frozen=True)
class Login:
    """Where a worker connects and how it logs in; picklable, and its repr shows no secret."""

    target: Target
    database: str
    address: Address
    user: str
    credentials: Credentials

    @property
    def where(self) -> str:
        return f"({self.address.host}:{self.address.port}, database {self.database!r}) as {self.user!r}"

    def _credential(self, refused: str | None) -> Credential:
        return self.credentials.credential(self.target, refused)

    def read_here(self) -> Login:
        """This login with its secret read now (see :meth:`Sealed.read_here`)."""
        credentials: Any = self.credentials  # one of three dataclasses, each with one Sealed field
        sealed = {
            f.name: value.read_here()
            for f in dataclasses.fields(credentials)
            if isinstance(value := getattr(credentials, f.name), Sealed)
        }
        return dataclasses.replace(self, credentials=dataclasses.replace(credentials, **sealed))

    def psycopg(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A psycopg connection (TLS), under the package's login policy."""
        import psycopg

        params = psycopg_params(self.address, self.database, self.user, kwargs)
        return login(
            lambda password: psycopg.connect(password=password, **params),
            self._credential,
            self.where,
            (psycopg.OperationalError,),
        )

    def adbc(self) -> Any:
        """An ADBC Postgres connection (TLS; binary COPY to and from Arrow), under the login policy."""
        import adbc_driver_manager
        import adbc_driver_postgresql.dbapi as adbc

        def open_connection(password: str) -> Any:
            uri = (
                f"postgresql://{quote(self.user, safe='')}:{quote(password, safe='')}@{self.address.host}:"
                f"{self.address.port}/{quote(self.database, safe='')}?sslmode=require&connect_timeout=10"
                f"&application_name={APPLICATION_NAME}"
            )
            return adbc.connect(uri)

        return login(
            open_connection,
            self._credential,
            self.where,
            (adbc_driver_manager.OperationalError, adbc_driver_manager.DatabaseError, socket.error),
        )
