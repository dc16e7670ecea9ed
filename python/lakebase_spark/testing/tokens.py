"""Lakebase database credentials: minted by the workspace API, checked by Postgres at login."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Final

__all__ = ["TOKEN_PREFIX", "LoginFailure", "TokenStats", "TokenStore"]

# Every database token starts with this, so a test can grep logs, plans and messages for leaks.
TOKEN_PREFIX: Final = "lbtok_"  # noqa: S105 - a prefix, not a secret

# Expired and revoked entries are kept this long so a late login reports *why* it failed
# (expired/revoked rather than unknown); after that they are dropped to bound memory.
_RETAIN_SECONDS: Final = 3600.0


class LoginFailure(str, Enum):
    """Why a login with a database token was refused."""

    UNKNOWN = "unknown"  # never minted here (or long forgotten)
    EXPIRED = "expired"
    REVOKED = "revoked"
    WRONG_PRINCIPAL = "wrong_principal"  # minted for another principal than the login user
    REFUSED = "refused"  # refused by fault injection


@dataclass(frozen=True)
class TokenStats:
    """Counters of a :class:`TokenStore` at one moment."""

    mints: int
    logins_ok: int
    logins_failed: int
    failures: dict[LoginFailure, int]  # refused logins by reason


@dataclass
class _Entry:
    principal: str
    expires_at: float  # clock() seconds, truncated to milliseconds like the reported expire_time
    revoked: bool = False


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", errors="surrogateescape")).digest()


class TokenStore:
    """Thread-safe store of database tokens.

    Several tokens may be valid at once; each is bound to the principal it was minted for and is checked
    (principal, expiry, revocation) only at login, as Postgres consults its authenticator only then: an
    open connection outlives its token. Only SHA-256 digests of tokens are kept, so neither a repr nor a
    memory dump of the store yields a usable token.

    Parameters
    ----------
    clock
        Seconds since the epoch, ``time.time`` by default; inject a fake to test expiry without sleeping.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        # Guards _entries and the counters; held only for dictionary work, never while blocking.
        self._lock = threading.Lock()
        self._entries: dict[bytes, _Entry] = {}
        self._mints = 0
        self._logins_ok = 0
        self._failures: Counter[LoginFailure] = Counter()

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"TokenStore(tokens={len(self._entries)}, mints={self._mints}, logins_ok={self._logins_ok})"
            )

    def now(self) -> float:
        """The store's clock, in seconds since the epoch."""
        return self._clock()

    def mint(self, principal: str, ttl_seconds: float) -> tuple[str, datetime]:
        """Create a token for ``principal`` valid for ``ttl_seconds``; return it and its UTC expiry."""
        if not principal:
            raise ValueError("principal must be a non-empty role name, got ''")
        if not ttl_seconds > 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        expires_at = int((now + ttl_seconds) * 1000) / 1000
        with self._lock:
            self._prune(now)
            self._entries[_digest(token)] = _Entry(principal, expires_at)
            self._mints += 1
        return token, datetime.fromtimestamp(expires_at, tz=timezone.utc)

    def verify(self, principal: str, token: str) -> LoginFailure | None:
        """Why ``token`` cannot log in ``principal`` now, or ``None`` if it can; counts nothing."""
        with self._lock:
            entry = self._entries.get(_digest(token))
            if entry is None:
                return LoginFailure.UNKNOWN
            if entry.revoked:
                return LoginFailure.REVOKED
            if entry.principal != principal:
                return LoginFailure.WRONG_PRINCIPAL
            if self._clock() >= entry.expires_at:
                return LoginFailure.EXPIRED
            return None

    def check(self, principal: str, token: str) -> bool:
        """Login check: whether ``token`` logs in ``principal`` now, counting the outcome."""
        failure = self.verify(principal, token)
        if failure is None:
            with self._lock:
                self._logins_ok += 1
            return True
        self.record_failure(failure)
        return False

    def record_failure(self, reason: LoginFailure) -> None:
        """Count a refused login decided outside the store (e.g. by fault injection)."""
        with self._lock:
            self._failures[reason] += 1

    def revoke(self, principal: str | None = None) -> int:
        """Revoke every token, or every token of ``principal``; return how many were valid."""
        now = self._clock()
        revoked = 0
        with self._lock:
            for entry in self._entries.values():
                if entry.revoked or (principal is not None and entry.principal != principal):
                    continue
                if now < entry.expires_at:
                    revoked += 1
                entry.revoked = True
        return revoked

    def valid_tokens(self, principal: str | None = None) -> int:
        """How many tokens (of ``principal``, or of anyone) would log in now."""
        now = self._clock()
        with self._lock:
            return sum(
                1
                for e in self._entries.values()
                if not e.revoked and now < e.expires_at and (principal is None or e.principal == principal)
            )

    @property
    def stats(self) -> TokenStats:
        """A snapshot of the counters."""
        with self._lock:
            return TokenStats(
                mints=self._mints,
                logins_ok=self._logins_ok,
                logins_failed=sum(self._failures.values()),
                failures=dict(self._failures),
            )

    def reset_counters(self) -> None:
        """Zero the counters; tokens stay valid."""
        with self._lock:
            self._mints = 0
            self._logins_ok = 0
            self._failures.clear()

    def _prune(self, now: float) -> None:
        stale = [k for k, e in self._entries.items() if e.expires_at + _RETAIN_SECONDS < now]
        for key in stale:
            del self._entries[key]
