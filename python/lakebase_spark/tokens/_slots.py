"""One cache key's token state in the broker (the token, its refresh generation, failures and the
workspace's last refusal), and what an outage reads as once the token ran out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..errors import WorkspaceRefusalError
from .credentials import Credential

__all__ = ["Slot", "outage_message"]


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
    #: The workspace's last refusal and when it came: served to every caller for ``REFUSAL_HOLD``.
    refusal: WorkspaceRefusalError | None = None
    refused_at: float = 0.0
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
