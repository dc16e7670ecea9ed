"""Counters of what the emulated workspace API served."""

from __future__ import annotations

import threading
from collections import Counter

__all__ = ["ApiStats"]


class ApiStats:
    """Thread-safe API counters: calls per route, credentials issued per principal.

    Routes are keyed like ``"POST /api/2.0/postgres/credentials"`` (see :class:`~.api.Route`).

    A call is counted whatever its outcome (401, injected fault, 404, success); a mint only when a
    credential was actually issued.
    """

    def __init__(self) -> None:
        # Guards both counters.
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._mints: Counter[str] = Counter()

    def __repr__(self) -> str:
        with self._lock:
            return f"ApiStats(calls={dict(self._calls)}, mints={dict(self._mints)})"

    def record_call(self, route: str) -> None:
        """Count one call of ``route``."""
        with self._lock:
            self._calls[route] += 1

    def record_mint(self, principal: str) -> None:
        """Count one credential issued to ``principal``."""
        with self._lock:
            self._mints[principal] += 1

    @property
    def calls(self) -> dict[str, int]:
        """Calls per route (a copy)."""
        with self._lock:
            return dict(self._calls)

    @property
    def mints(self) -> int:
        """Credentials issued so far, to anyone."""
        with self._lock:
            return sum(self._mints.values())

    @property
    def mints_by_principal(self) -> dict[str, int]:
        """Credentials issued per principal (a copy)."""
        with self._lock:
            return dict(self._mints)

    def calls_to(self, route: str) -> int:
        """Calls of one route so far."""
        with self._lock:
            return self._calls[route]

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self._calls.clear()
            self._mints.clear()
