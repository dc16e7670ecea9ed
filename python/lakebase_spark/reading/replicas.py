"""Bounded staleness for reads from a read replica (a hot standby: asynchronous, so behind its primary
by its replay lag).

The lag is the standard standby-side measure: 0 when everything received has been replayed, else the
time since the last replayed transaction committed on the primary. It cannot see WAL that has not
reached the replica yet (a cut link reads as 0); Lakebase replicas stream from the same storage.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError, LakebaseSparkError

if TYPE_CHECKING:
    import psycopg

__all__ = ["ReplicaLagError", "await_lag", "replay_lag"]

_LAG = (
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
    "WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 "
    "ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0) END::float8"
)


class ReplicaLagError(LakebaseSparkError):
    """A replica is further behind its primary than the read allows."""

    def __init__(self, message: str, *, lag: float, max_lag: float) -> None:
        super().__init__(message)
        self.lag = lag
        self.max_lag = max_lag


def replay_lag(conn: psycopg.Connection[Any]) -> float:
    """Seconds this server is behind its primary (0 on a primary)."""
    row = conn.execute(_LAG).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


def await_lag(conn: psycopg.Connection[Any], max_lag: float, *, wait: float, where: str) -> float:
    """Return the lag once it is at most ``max_lag`` seconds, waiting up to ``wait`` seconds for it;
    else raise :class:`ReplicaLagError`."""
    if max_lag < 0 or wait < 0:
        raise InvalidArgumentError(f"max_lag and lag_wait must be at least 0, got {max_lag!r} and {wait!r}")
    deadline = time.monotonic() + wait
    while True:
        lag = replay_lag(conn)
        if lag <= max_lag:
            return lag
        if time.monotonic() >= deadline:
            raise ReplicaLagError(
                f"{where} is {lag:.1f} s behind its primary, more than max_lag={max_lag:g} s"
                + (f" after waiting {wait:g} s" if wait else "")
                + ": read the primary, raise max_lag, or give the replica time (lag_wait=)",
                lag=lag,
                max_lag=max_lag,
            )
        time.sleep(min(0.5, max(deadline - time.monotonic(), 0.01)))
