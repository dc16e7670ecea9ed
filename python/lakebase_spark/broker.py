"""Token broker: mints Lakebase database credentials with databricks-sdk and caches them.

One broker wraps one ``WorkspaceClient``. A database token is valid for every endpoint (or
instance) the principal may use in the workspace, so the cache key is what the credential is valid
for — the workspace host, the principal and the API family — not the endpoint asked about: a job
over many endpoints and shards shares one token per refresh window.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from ._api import call_api
from .credentials import Credential, Secret
from .endpoints import validate_endpoint_name, validate_instance_name
from .errors import CredentialError
from .redaction import install_sdk_log_redaction

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["BrokerStats", "TokenBroker"]

log = logging.getLogger(__name__)

Api = Literal["postgres", "database"]

#: Refresh this long before the server's expiry (10 of a token's usual 60 minutes) ...
DEFAULT_REFRESH_MARGIN = 600.0
#: ... but never more than this share of the token's lifetime, so short-lived tokens (tests,
#: custom TTLs) are still used for most of their life instead of being re-minted on every call.
MAX_MARGIN_SHARE = 0.25
#: databricks-sdk's default retry_timeout_seconds.
DEFAULT_SDK_RETRY_TIMEOUT = 300.0


@dataclass
class BrokerStats:
    """Counters a user can read from Python (``broker.stats``)."""

    mints: int = 0
    cache_hits: int = 0
    mint_failures: int = 0
    #: Mints caused by a JVM reporting that the database refused the cached token.
    refused_tokens: int = 0
    #: Background refreshes that failed (the current token stays in use until it is due).
    refresh_failures: int = 0
    #: Seconds of life left on the newest token at the last mint or lookup (``None`` before any).
    seconds_left: float | None = None


#: Runs ``callback`` after ``delay`` seconds unless cancelled; returns the cancel function. Injectable so
#: background refresh is tested by calling the callback, not by waiting.
Scheduler = Callable[[float, Callable[[], None]], Callable[[], None]]


def timer_scheduler(delay: float, callback: Callable[[], None]) -> Callable[[], None]:
    timer = threading.Timer(max(delay, 0.0), callback)
    timer.name = "lakebase-token-refresh"
    timer.daemon = True
    timer.start()
    return timer.cancel


class TokenBroker:
    """Mints and caches database credentials; thread-safe, one mint at a time per cache key.

    Parameters
    ----------
    workspace:
        The SDK client whose identity the tokens carry. ``None`` builds ``WorkspaceClient()`` from
        the environment (notebook auth, ``DATABRICKS_HOST``/``TOKEN``, a config profile, ...).
    refresh_margin:
        Seconds before the server's ``expire_time`` at which a new token is minted, capped at a
        quarter of the token's lifetime. Tokens are checked only at login, so a token handed out
        just before this point still has ``refresh_margin`` seconds to open connections with.
    background_refresh:
        Mint the next token when the current one reaches its refresh time, in the background, so no
        connection waits on a mint. Off by default: a token is then minted on the first request
        after the refresh time (one caller waits; the others are served by that mint).
    clock, scheduler:
        Seconds since the epoch, and what runs background refreshes; injectable so expiry and
        refresh are tested without sleeping.

    The retry budget for transient API failures is the client's ``retry_timeout_seconds``: the
    SDK retries 429 (honouring ``Retry-After``), 503 and connection errors with jitter until then.
    """

    def __init__(
        self,
        workspace: WorkspaceClient | None = None,
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        background_refresh: bool = False,
        clock: Callable[[], float] = time.time,
        scheduler: Scheduler = timer_scheduler,
    ) -> None:
        if refresh_margin < 0:
            raise ValueError(f"refresh_margin must be >= 0 seconds, got {refresh_margin!r}")
        if workspace is None:
            from databricks.sdk import WorkspaceClient

            workspace = WorkspaceClient()
        install_sdk_log_redaction()
        self.workspace = workspace
        self.refresh_margin = refresh_margin
        self.background_refresh = background_refresh
        self.stats = BrokerStats()
        self._clock = clock
        self._scheduler = scheduler
        self._cancel_refresh: dict[tuple[str, str, Api], Callable[[], None]] = {}
        self._closed = False
        self._principal: str | None = None
        # _lock guards the two dicts; each key's own lock is held for the whole mint, which is
        # what makes concurrent callers wait for one mint instead of starting their own.
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, Api], Credential] = {}
        self._key_locks: dict[tuple[str, str, Api], threading.Lock] = {}

    def __repr__(self) -> str:
        return f"TokenBroker(host={self.host!r}, principal={self._principal!r})"

    def now(self) -> float:
        """The broker's clock, which credentials' times are on."""
        return self._clock()

    @property
    def retry_budget(self) -> float:
        """Seconds the SDK keeps retrying a transient failure (``retry_timeout_seconds``)."""
        configured = getattr(self.workspace.config, "retry_timeout_seconds", None)
        return float(configured) if configured else DEFAULT_SDK_RETRY_TIMEOUT

    def close(self) -> None:
        """Cancel scheduled background refreshes; cached tokens stay usable until they expire."""
        with self._lock:
            self._closed = True
            cancels, self._cancel_refresh = list(self._cancel_refresh.values()), {}
        for cancel in cancels:
            cancel()

    @property
    def host(self) -> str:
        return str(self.workspace.config.host)

    @property
    def principal(self) -> str:
        """The user name the workspace knows the caller by, which is also its Postgres role."""
        if self._principal is None:
            me = call_api(self.workspace.current_user.me, what="look up the current user")
            if not me.user_name:
                raise CredentialError(
                    f"the workspace {self.host} returned no user name for the current principal"
                )
            self._principal = me.user_name
        return self._principal

    def credential(
        self,
        *,
        endpoint: str | None = None,
        instance: str | None = None,
        force: bool = False,
        refused: str | None = None,
    ) -> Credential:
        """A credential good for ``endpoint`` (Autoscaling) or ``instance`` (Provisioned).

        Returns the cached one until its refresh time. ``force`` skips the cache. ``refused`` is
        the :meth:`Credential.digest` of a token the database refused: a new one is minted only if
        that is still the cached token, so many JVMs reporting one revoked token cause one mint.
        Exactly one of ``endpoint`` and ``instance`` is needed: the API requires a target to mint,
        though the token then serves every target.
        """
        api: Api
        if (endpoint is None) == (instance is None):
            raise ValueError("give exactly one of endpoint= (Autoscaling) or instance= (Provisioned)")
        if endpoint is not None:
            validate_endpoint_name(endpoint)
            api, target = "postgres", endpoint
        else:
            assert instance is not None
            validate_instance_name(instance)
            api, target = "database", instance
        key = (self.host, self.principal, api)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            cached = self._cache.get(key)
            now = self._clock()
            if (
                cached is not None
                and not force
                and now < cached.refresh_at
                and (refused is None or refused != cached.digest())
            ):
                self.stats.cache_hits += 1
                self.stats.seconds_left = cached.expires_at - now
                return cached
            try:
                fresh = self._mint(api, target)
            except Exception:
                self.stats.mint_failures += 1
                raise
            self._store(key, fresh, api, target)
            if refused is not None:
                self.stats.refused_tokens += 1
        log.info(
            "minted a Lakebase database credential for %s (valid %.0f s, refresh in %.0f s%s)",
            fresh.principal,
            fresh.expires_at - fresh.minted_at,
            fresh.refresh_at - fresh.minted_at,
            ", replacing a refused token" if refused is not None else "",
        )
        return fresh

    def _store(self, key: tuple[str, str, Api], fresh: Credential, api: Api, target: str) -> None:
        """Cache a new credential (key lock held) and schedule its background successor."""
        self.stats.mints += 1
        self.stats.seconds_left = fresh.expires_at - fresh.minted_at
        self._cache[key] = fresh
        if not self.background_refresh:
            return
        with self._lock:
            if self._closed:
                return
            previous = self._cancel_refresh.pop(key, None)
            self._cancel_refresh[key] = self._scheduler(
                fresh.refresh_at - self._clock(), lambda: self._refresh_in_background(key, api, target)
            )
        if previous is not None:
            previous()

    def _refresh_in_background(self, key: tuple[str, str, Api], api: Api, target: str) -> None:
        with self._lock:
            key_lock = self._key_locks[key]
        with key_lock:
            if self._closed:
                return
            try:
                fresh = self._mint(api, target)
            except Exception as e:
                # The current token is still valid for refresh_margin: the next request retries.
                self.stats.refresh_failures += 1
                log.warning("background refresh of the Lakebase database credential failed: %s", e)
                return
            self._store(key, fresh, api, target)
        log.info("refreshed the Lakebase database credential for %s in the background", fresh.principal)

    def _mint(self, api: Api, target: str) -> Credential:
        now = self._clock()
        if api == "postgres":
            pg = call_api(
                lambda: self.workspace.postgres.generate_database_credential(endpoint=target),
                what=f"mint a database credential for endpoint {target!r}",
                target=target,
            )
            token, expires_at = pg.token, _timestamp_seconds(pg.expire_time)
        else:
            db = call_api(
                lambda: self.workspace.database.generate_database_credential(
                    instance_names=[target], request_id=str(uuid.uuid4())
                ),
                what=f"mint a database credential for instance {target!r}",
                target=target,
            )
            token = db.token
            expires_at = _rfc3339_seconds(db.expiration_time) if db.expiration_time else None
        if not token or expires_at is None:
            raise CredentialError(
                f"the workspace {self.host} answered the credential request for {target!r} "
                "without a token or an expiry time"
            )
        lifetime = max(expires_at - now, 0.0)
        margin = min(self.refresh_margin, lifetime * MAX_MARGIN_SHARE)
        return Credential(
            token=Secret(token),
            principal=self.principal,
            expires_at=expires_at,
            minted_at=now,
            refresh_at=expires_at - margin,
        )


def _timestamp_seconds(ts: object) -> float | None:
    """Seconds since the epoch of a protobuf ``Timestamp`` as the SDK returns it."""
    if ts is None:
        return None
    seconds = getattr(ts, "seconds", None)
    nanos = getattr(ts, "nanos", 0)
    if isinstance(seconds, int):
        return seconds + nanos / 1e9
    return _rfc3339_seconds(str(ts))


def _rfc3339_seconds(text: str) -> float:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()
