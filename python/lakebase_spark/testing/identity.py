"""Workspace identities: users with PATs, service principals with OAuth secrets, and their API tokens."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "CLIENT_SECRET_PREFIX",
    "PAT_PREFIX",
    "Directory",
    "Principal",
    "PrincipalKind",
]

# Databricks PATs start with "dapi" and OAuth client secrets with "dose"; keeping the real prefixes lets
# leak checks written against the emulator also work against a real workspace.
PAT_PREFIX: Final = "dapi"
CLIENT_SECRET_PREFIX: Final = "dose"  # noqa: S105 - a prefix, not a secret
# Real OAuth access tokens are JWTs; ours are opaque, with a prefix a test can grep for.
ACCESS_TOKEN_PREFIX: Final = "lbat_"  # noqa: S105 - a prefix, not a secret


class PrincipalKind(str, Enum):
    """The two kinds of workspace identity the emulator knows."""

    USER = "user"
    SERVICE_PRINCIPAL = "service_principal"


@dataclass(frozen=True)
class Principal:
    """A workspace identity.

    ``name`` is what SCIM ``Me`` returns as ``userName`` and what Lakebase uses as the Postgres role:
    the e-mail of a user, the application id (a UUID) of a service principal.
    """

    name: str
    kind: PrincipalKind
    id: str  # the numeric SCIM id, as a string like on Databricks
    display_name: str


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", errors="surrogateescape")).digest()


@dataclass
class _AccessToken:
    principal: Principal
    expires_at: float


class Directory:
    """Thread-safe registry of principals and the credentials that authenticate API calls.

    Only SHA-256 digests of PATs, client secrets and access tokens are kept. Access-token expiry uses
    ``clock`` (real time by default) rather than the emulator's injectable database-token clock: the SDK
    refreshes its OAuth token by real time, so moving a fake clock must not log it out.
    """

    def __init__(self, *, access_token_ttl: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.access_token_ttl = access_token_ttl
        self._clock = clock
        # Guards every dictionary below.
        self._lock = threading.Lock()
        self._ids = itertools.count(4_200_000_000_000_001)
        self._principals: dict[str, Principal] = {}
        self._pats: dict[bytes, Principal] = {}
        self._pat_of: dict[str, str] = {}  # user name -> PAT, so add_user is idempotent
        self._secrets: dict[str, bytes] = {}  # client id -> digest of its secret
        self._access_tokens: dict[bytes, _AccessToken] = {}

    def __repr__(self) -> str:
        with self._lock:
            return f"Directory(principals={sorted(self._principals)})"

    def add_user(self, user_name: str) -> tuple[Principal, str]:
        """Register a user (idempotent) and return it with its PAT."""
        if not user_name or user_name != user_name.strip():
            raise ValueError(
                f"user_name must be a non-empty name without surrounding spaces, got {user_name!r}"
            )
        with self._lock:
            existing = self._principals.get(user_name)
            if existing is not None:
                if existing.kind is not PrincipalKind.USER:
                    raise ValueError(f"{user_name!r} is already a service principal; pick another user name")
                return existing, self._pat_of[user_name]
            principal = Principal(
                user_name, PrincipalKind.USER, str(next(self._ids)), user_name.split("@")[0]
            )
            pat = PAT_PREFIX + secrets.token_hex(16)
            self._principals[user_name] = principal
            self._pats[_digest(pat)] = principal
            self._pat_of[user_name] = pat
            return principal, pat

    def add_service_principal(self, display_name: str | None = None) -> tuple[Principal, str]:
        """Register a new service principal; return it and its OAuth secret (client id = ``name``)."""
        application_id = str(uuid.uuid4())
        secret = CLIENT_SECRET_PREFIX + secrets.token_hex(20)
        with self._lock:
            principal = Principal(
                application_id,
                PrincipalKind.SERVICE_PRINCIPAL,
                str(next(self._ids)),
                display_name or f"lakebase-emulator-sp-{application_id[:8]}",
            )
            self._principals[application_id] = principal
            self._secrets[application_id] = _digest(secret)
        return principal, secret

    def get(self, name: str) -> Principal | None:
        """The principal called ``name``, if registered."""
        with self._lock:
            return self._principals.get(name)

    def principals(self) -> list[Principal]:
        """Every registered principal, in registration order."""
        with self._lock:
            return list(self._principals.values())

    def issue_access_token(self, client_id: str, client_secret: str) -> str | None:
        """OAuth client-credentials grant: a new access token, or ``None`` if the client is unknown."""
        with self._lock:
            expected = self._secrets.get(client_id)
            if expected is None or not hmac.compare_digest(expected, _digest(client_secret)):
                return None
            now = self._clock()
            stale = [k for k, t in self._access_tokens.items() if t.expires_at < now]
            for key in stale:
                del self._access_tokens[key]
            token = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
            self._access_tokens[_digest(token)] = _AccessToken(
                self._principals[client_id], now + self.access_token_ttl
            )
            return token

    def authenticate(self, bearer: str) -> Principal | None:
        """The principal a bearer token (PAT or OAuth access token) belongs to, if it is valid now."""
        key = _digest(bearer)
        with self._lock:
            principal = self._pats.get(key)
            if principal is not None:
                return principal
            access = self._access_tokens.get(key)
            if access is None or self._clock() >= access.expires_at:
                return None
            return access.principal
