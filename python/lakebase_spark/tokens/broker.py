"""Token broker: mints Lakebase database credentials with databricks-sdk and caches them.

One broker wraps one ``WorkspaceClient``. A database token is valid for every endpoint (or
instance) the principal may use in the workspace, so the cache key is what the credential is valid
for — the workspace host, the principal and the API family — not the endpoint asked about: a job
over many endpoints and shards shares one token per refresh window.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .._api import call_api
from .._deprecations import renamed_workspace
from ..errors import CredentialError, InvalidArgumentError, WorkspaceRefusalError
from ..redaction import install_sdk_log_redaction
from ..targets import Target
from ._minting import Api, mint
from ._slots import IDENTITY, Refusal, Slot, outage_message, refusal_scope, scopes_of
from .credentials import Credential, Secret

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["BrokerStats", "TokenBroker"]

log = logging.getLogger(__name__)

#: A token is stale (still served, while one refresh runs) for its last 20 minutes ...
DEFAULT_REFRESH_MARGIN = 1200.0
#: ... or its second half, if shorter: databricks-sdk's ``Refreshable`` uses the same window,
#: min(TTL / 2, 20 min), chosen to ride out a 99.99 % SLA month's worth of workspace API downtime.
MAX_MARGIN_SHARE = 0.5
#: A token is not handed out in its last 30 s (or last tenth of its life): a login needs time.
LOGIN_MARGIN = 30.0
MAX_LOGIN_MARGIN_SHARE = 0.1
#: Failed refreshes back off exponentially from this, with jitter, up to the SDK's one minute.
FIRST_RETRY_BACKOFF = 1.0
MAX_RETRY_BACKOFF = 60.0
#: While a stale token is being replaced, callers are told to ask again this soon (at most).
STALE_ASK_AGAIN = 5.0
#: databricks-sdk's default retry_timeout_seconds.
DEFAULT_SDK_RETRY_TIMEOUT = 300.0
#: After the workspace refuses a mint (401/403/404/400), every request for what it refused fails with
#: that refusal for this long without asking the workspace again (a herd of JVMs and task retries causes
#: one API call); the next such request after it asks again, so a permission granted meanwhile takes
#: effect without a restart. The JVM's token cache holds a refusal as long (TokenCache.REFUSAL_HOLD_MS).
REFUSAL_HOLD = 10.0


@dataclass
class BrokerStats:
    """Counters a user can read from Python (``broker.stats``)."""

    mints: int = 0
    cache_hits: int = 0
    #: Requests answered with a stale token (past its refresh time) while its successor was minted.
    stale_served: int = 0
    #: Mints that failed a caller (no usable token was cached).
    mint_failures: int = 0
    #: Mints caused by a JVM reporting that the database refused the cached token.
    refused_tokens: int = 0
    #: Refreshes of a still-valid token that failed; the token stayed in use, the refresh was retried.
    refresh_failures: int = 0
    #: Requests failed at once because the workspace refused a mint (401/403/404/400) moments before.
    refusals_served: int = 0
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


Key = tuple[str, str, Api]


class TokenBroker:
    """Mints and caches database credentials; thread-safe, one mint at a time per cache key.

    A token is **fresh** until its refresh time and served from the cache; **stale** from then
    until shortly before its expiry: it is still served at once, while one refresh runs in the
    background (a failed refresh is retried with jittered exponential backoff, never failing a
    caller); **expired** after that: the caller waits for a mint. This is databricks-sdk's
    ``Refreshable`` rule, and the JVM provider's token cache follows it too.

    Parameters
    ----------
    workspace:
        The SDK client whose identity the tokens carry. ``None`` builds ``WorkspaceClient()`` from
        the environment (notebook auth, ``DATABRICKS_HOST``/``TOKEN``, a config profile, ...).
    refresh_margin:
        Seconds before the server's ``expire_time`` at which a token turns stale, capped at half of
        the token's lifetime. It is how long a workspace API outage can last without failing a login.
    background_refresh:
        Also refresh when a token turns stale though nobody asks (a timer), so the first request
        after a quiet period finds a fresh token. Off by default: the first request in the stale
        window starts the refresh and is served the current token meanwhile.
    clock, scheduler:
        Seconds since the epoch, and what runs refreshes (``scheduler(0, f)`` runs ``f`` on another
        thread); injectable so expiry and refresh are tested without sleeping.

    The retry budget for transient API failures is the client's ``retry_timeout_seconds``: the
    SDK retries 429 (honouring ``Retry-After``), 503 and connection errors with jitter until then.
    """

    def __init__(
        self,
        workspace_client: WorkspaceClient | None = None,
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        background_refresh: bool = False,
        clock: Callable[[], float] = time.time,
        scheduler: Scheduler = timer_scheduler,
        workspace: WorkspaceClient | None = None,
    ) -> None:
        workspace = renamed_workspace(workspace_client, workspace)
        if refresh_margin < 0:
            raise InvalidArgumentError(
                f"refresh_margin must be >= 0 seconds, got {refresh_margin!r}", argument="refresh_margin"
            )
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
        self._closed = False
        self._principal: str | None = None
        # Guards every slot's fields and the dict; never held during a mint.
        self._lock = threading.Lock()
        self._slots: dict[Key, Slot] = {}

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
            cancels = [slot.cancel_timer for slot in self._slots.values() if slot.cancel_timer]
            for slot in self._slots.values():
                slot.cancel_timer = None
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

        Fresh and stale tokens are served from the cache (a stale one comes back with
        ``refresh_at`` moved to when to ask again, while its successor is minted). ``force`` skips
        the cache. ``refused`` is the :meth:`Credential.digest` of a token the database refused: a
        new one is minted only if that is still the cached token, so many JVMs reporting one revoked
        token cause one mint. Exactly one of ``endpoint`` and ``instance`` is needed: the API
        requires a target to mint, though the token then serves every target.

        A refusal by the workspace (401/403/404/400) fails the requests for what it refused at once for
        ``REFUSAL_HOLD`` (:func:`._slots.refusal_scope`: the identity, a project's or instance's
        permission, one endpoint), and sends them to the workspace afterwards; requests for anything
        else keep being served the cached token.
        """
        chosen = Target.of(endpoint, instance)
        key = (self.host, self.principal, chosen.api)
        with self._lock:
            slot = self._slots.setdefault(key, Slot())
            recheck = self._check_refusals(slot, chosen)
            served = None if force or recheck else self._serve(slot, refused, key, chosen)
            generation, attempts = slot.generation, slot.attempts
        if served is not None:
            return served
        with slot.mint_lock:
            with self._lock:
                # Another caller (or a refresh) may have minted while this one waited for the lock ...
                if slot.generation != generation and not recheck:
                    served = self._serve(slot, refused, key, chosen)
                    if served is not None:
                        return served
                # ... or failed to: one mint at a time means one failure at a time, shared (a refusal
                # only with the requests it covers).
                if slot.attempts != attempts and slot.last_error is not None:
                    if isinstance(slot.last_error, WorkspaceRefusalError):
                        self._check_refusals(slot, chosen)
                    else:
                        self.stats.mint_failures += 1
                        raise _same_error(slot.last_error)
            try:
                fresh = self._mint(chosen)
            except WorkspaceRefusalError as e:
                with self._lock:
                    self.stats.mint_failures += 1
                    self._refused(slot, e, chosen)
                raise
            except Exception as e:
                with self._lock:
                    self.stats.mint_failures += 1
                    now = self._clock()
                    self._failed(slot, e, now)
                    outage = outage_message(slot, now)
                    failure: Exception = (
                        e if outage is None else CredentialError(f"{outage}; the last error: {e}")
                    )
                    slot.last_error = failure
                if failure is e:
                    raise
                raise failure from e
            self._store(key, slot, fresh, chosen)
            if refused is not None:
                with self._lock:
                    self.stats.refused_tokens += 1
        log.info(
            "minted a Lakebase database credential for %s (valid %.0f s, refresh in %.0f s%s)",
            fresh.principal,
            fresh.expires_at - fresh.minted_at,
            fresh.refresh_at - fresh.minted_at,
            ", replacing a refused token" if refused is not None else "",
        )
        return fresh

    def _check_refusals(self, slot: Slot, target: Target) -> bool:
        """(``_lock`` held) Raise a refusal covering ``target`` that came less than ``REFUSAL_HOLD`` ago;
        True if an older one covers it: the request must ask the workspace, not the cache."""
        now = self._clock()
        covering = [slot.refusals[s] for s in scopes_of(target) if s in slot.refusals]
        for refusal in covering:
            if now - refusal.at < REFUSAL_HOLD:
                self.stats.refusals_served += 1
                raise _same_error(refusal.error)
        return bool(covering)

    def _refused(self, slot: Slot, error: WorkspaceRefusalError, target: Target) -> None:
        """Record a refusal of a mint for ``target`` (``_lock`` held), for what it refuses: the requests
        it covers fail with it until ``REFUSAL_HOLD`` has passed. A refusal is not an outage: a refusal
        of the identity (401) drops the cached token rather than serving it stale; one of a project or an
        endpoint leaves the token to the requests for anything else."""
        scope = refusal_scope(error, target)
        slot.refusals[scope] = Refusal(error, self._clock())
        slot.attempts += 1
        slot.last_error = error
        slot.refreshing = False
        if scope != IDENTITY:
            return
        slot.credential = None
        slot.generation += 1  # a refresh in flight for the dropped token is discarded
        slot.retry_at, slot.failures, slot.failing_since, slot.last_failure = 0.0, 0, None, None
        if slot.cancel_timer is not None:
            slot.cancel_timer()
            slot.cancel_timer = None

    def _failed(self, slot: Slot, error: Exception, now: float) -> None:
        """Record a transient failure (``_lock`` held): counted into the outage the error names."""
        slot.attempts += 1
        slot.failures += 1
        slot.failing_since = slot.failing_since or now
        slot.last_failure = str(error)
        slot.last_error = error

    def _serve(self, slot: Slot, refused: str | None, key: Key, target: Target) -> Credential | None:
        """The cached credential if it may be served now (``_lock`` held), else ``None``: mint."""
        cached = slot.credential
        if cached is None or (refused is not None and refused == cached.digest()):
            return None
        now = self._clock()
        if now < cached.refresh_at:
            self.stats.cache_hits += 1
            self.stats.seconds_left = cached.expires_at - now
            return cached
        usable_until = _usable_until(cached)
        if now >= usable_until:
            return None
        # Stale: serve it, and make sure exactly one refresh is under way (unless backing off).
        self.stats.stale_served += 1
        self.stats.seconds_left = cached.expires_at - now
        if not slot.refreshing and now >= slot.retry_at and not self._closed:
            slot.refreshing = True
            generation = slot.generation
            self._scheduler(0.0, lambda: self._refresh(key, slot, target, generation))
        ask_again = max(slot.retry_at - now, min(STALE_ASK_AGAIN, cached.lifetime() / 20))
        return replace(cached, refresh_at=min(now + ask_again, usable_until))

    def _store(self, key: Key, slot: Slot, fresh: Credential, target: Target) -> None:
        """Cache a new credential (``mint_lock`` held) and schedule its background successor; the
        workspace answered for ``target``, so the refusals covering it are over."""
        with self._lock:
            self.stats.mints += 1
            self.stats.seconds_left = fresh.expires_at - fresh.minted_at
            slot.credential = fresh
            slot.generation += 1
            slot.attempts += 1
            slot.refreshing = False
            slot.retry_at, slot.failures, slot.failing_since, slot.last_failure = 0.0, 0, None, None
            slot.last_error = None
            for scope in scopes_of(target):
                slot.refusals.pop(scope, None)
            self._schedule(key, slot, fresh.refresh_at - self._clock(), target)

    def _schedule(self, key: Key, slot: Slot, delay: float, target: Target) -> None:
        """Arm (``_lock`` held) the background timer of ``background_refresh`` to fire in ``delay``."""
        if not self.background_refresh or self._closed:
            return
        if slot.cancel_timer is not None:
            slot.cancel_timer()
        generation = slot.generation
        slot.cancel_timer = self._scheduler(delay, lambda: self._timer_fired(key, slot, target, generation))

    def _timer_fired(self, key: Key, slot: Slot, target: Target, generation: int) -> None:
        with self._lock:
            slot.cancel_timer = None
            if self._closed or slot.refreshing or slot.generation != generation:
                return
            slot.refreshing = True
        self._refresh(key, slot, target, generation)

    def _refresh(self, key: Key, slot: Slot, target: Target, generation: int) -> None:
        """Replace a stale token (``slot.refreshing`` set by the caller); on failure back off."""
        with slot.mint_lock:
            with self._lock:
                if self._closed or slot.generation != generation:
                    slot.refreshing = False  # someone else minted meanwhile: nothing to do
                    return
            try:
                fresh = self._mint(target)
            except WorkspaceRefusalError as e:
                with self._lock:
                    self.stats.refresh_failures += 1
                    self._refused(slot, e, target)
                log.warning(
                    "refreshing the Lakebase database credential for %s was refused by the workspace; token "
                    "requests for what it refused fail with this until it is fixed: %s",
                    target,
                    e,
                )
                return
            except Exception as e:
                with self._lock:
                    now = self._clock()
                    slot.refreshing = False
                    self._failed(slot, e, now)
                    backoff = min(MAX_RETRY_BACKOFF, FIRST_RETRY_BACKOFF * 2 ** (slot.failures - 1))
                    backoff *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography
                    slot.retry_at = now + backoff
                    self.stats.refresh_failures += 1
                    self._schedule(key, slot, backoff, target)
                log.warning(
                    "refreshing the Lakebase database credential failed (attempt %d; the current "
                    "token stays in use for %.0f s more, next attempt in %.1f s): %s",
                    slot.failures,
                    _usable_until(slot.credential) - now if slot.credential else 0.0,
                    backoff,
                    e,
                )
                return
            self._store(key, slot, fresh, target)
        log.info("refreshed the Lakebase database credential for %s", fresh.principal)

    def _mint(self, target: Target) -> Credential:
        now = self._clock()
        token, expires_at = mint(self.workspace, target.api, target.name)
        lifetime = max(expires_at - now, 0.0)
        margin = min(self.refresh_margin, lifetime * MAX_MARGIN_SHARE)
        return Credential(
            token=Secret(token),
            principal=self.principal,
            expires_at=expires_at,
            minted_at=now,
            refresh_at=expires_at - margin,
        )


def _usable_until(credential: Credential) -> float:
    """The last moment a token is handed out: it must leave time for the login that uses it."""
    return credential.expires_at - min(LOGIN_MARGIN, credential.lifetime() * MAX_LOGIN_MARGIN_SHARE)


def _same_error(error: Exception) -> Exception:
    """A new exception like ``error`` (same class, message and status) for another caller to raise."""
    try:
        if isinstance(error, WorkspaceRefusalError):
            return type(error)(str(error), status=error.status)
        return type(error)(str(error))
    except Exception:
        return CredentialError(str(error))
