"""One cache key's token state in the broker (the token, its refresh generation, failures and the
workspace's refusals, each for what it refused), and what an outage reads as once the token ran out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..errors import WorkspaceRefusalError
from ..targets import Target
from .credentials import Credential

__all__ = ["IDENTITY", "Refusal", "Slot", "outage_message", "refusal_scope", "scopes_of"]

#: The scope of a refusal of the caller itself (HTTP 401: its workspace credentials): every target.
IDENTITY = "identity"


def refusal_scope(error: WorkspaceRefusalError, target: Target) -> str:
    """What a refusal of a mint for ``target`` refuses: the caller's identity (401), a permission on the
    target's project or instance (403), or the target alone (404: no such endpoint; 400 and others)."""
    if error.status == 401:
        return IDENTITY
    if error.status == 403:
        return target.permission_scope
    return str(target)


def scopes_of(target: Target) -> tuple[str, ...]:
    """Every scope whose refusal covers a request for ``target``."""
    return (IDENTITY, target.permission_scope, str(target))


@dataclass(frozen=True)
class Refusal:
    """A refusal by the workspace, and when it came (on the broker's clock)."""

    error: WorkspaceRefusalError
    at: float


@dataclass
class Slot:
    """One cache key's token and refresh state; fields are guarded by the broker's ``_lock``."""

    credential: Credential | None = None
    #: Bumped by every stored token: a refresh started for an older generation is discarded.
    generation: int = 0
    refreshing: bool = False
    #: No refresh is attempted before this time (set after a failure, with jitter).
    retry_at: float = 0.0
    #: Failed mints (background refreshes and blocking mints) since the last success, and since when.
    failures: int = 0
    failing_since: float | None = None
    last_failure: str | None = None
    #: Mints finished (either way): a caller that waited for ``mint_lock`` while one failed shares its
    #: failure instead of calling the workspace again.
    attempts: int = 0
    last_error: Exception | None = None
    #: The workspace's refusals by scope (:func:`refusal_scope`): each fails the requests it covers at
    #: once for ``REFUSAL_HOLD``, then sends them to the workspace (never the cache) until a mint for
    #: them succeeds. A refusal fails nothing it did not refuse.
    refusals: dict[str, Refusal] = field(default_factory=dict)
    cancel_timer: Callable[[], None] | None = None
    #: Held for the whole of each mint, so concurrent callers wait for one mint, not start their own.
    mint_lock: threading.Lock = field(default_factory=threading.Lock)


def outage_message(slot: Slot, now: float) -> str | None:
    """What to tell a caller whose token ran out while refreshes kept failing (``_lock`` held)."""
    if not slot.failures or slot.credential is None or slot.failing_since is None:
        return None
    expired = datetime.fromtimestamp(slot.credential.expires_at, timezone.utc)
    return (
        f"the workspace API has been failing for {now - slot.failing_since:.0f} s "
        f"({slot.failures} failed attempt{'s' if slot.failures != 1 else ''} to mint a new database "
        "credential since the cached one turned stale), "
        f"and that credential can no longer be used (it expires at {expired:%H:%M:%S} UTC); "
        "logins resume when the workspace API answers again"
    )
