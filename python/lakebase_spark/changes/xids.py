"""Transaction ids as a slot-free change stream (``mode=xmin``) uses them: the horizon below which every
transaction has finished, and the SQL that picks the rows whose current version one of them wrote.

A row version's ``xmin`` is the 32-bit id of the transaction that wrote it; ``pg_current_snapshot()``
gives 64-bit ids (``xid8``: epoch << 32 | xid). While the cluster's epoch is 0 (fewer than 2^32 ids
ever assigned) a 32-bit ``xmin`` equals its 64-bit id, so ranges of 64-bit ids select rows exactly.
After the first wraparound they do not: vacuum freezes old rows but keeps their raw ``xmin``, which
then reads as a recent id. A stream refuses to plan a batch there (:class:`XidWraparoundError`) rather
than return rows as changed that did not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ChangeStreamError

if TYPE_CHECKING:
    import psycopg

__all__ = ["EPOCH", "XMIN", "XidWraparoundError", "horizon", "xmin_range"]

#: 64-bit transaction ids at and above this are past the first wraparound.
EPOCH = 1 << 32
#: A row version's writer as a bigint (``xid`` has no cast to integers; its text form is the number).
XMIN = "xmin::text::int8"


class XidWraparoundError(ChangeStreamError):
    """The cluster has used 2^32 transaction ids: 32-bit row ``xmin`` no longer orders rows by time."""


def horizon(conn: psycopg.Connection[Any]) -> int:
    """The oldest transaction id still running (``xmin`` of a snapshot taken now): every id below it
    has committed or aborted, so a row version written below it is visible now and for good, or never.
    Taking the snapshot assigns no transaction id."""
    row = conn.execute("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8").fetchone()
    assert row is not None
    value = int(row[0])
    if value >= EPOCH:
        raise XidWraparoundError(
            f"lakebase: a change stream with mode=xmin compares rows' 32-bit transaction ids, and this "
            f"database has used more than 2^32 of them (epoch {value >> 32}): old frozen rows would read as "
            "changed. Use mode=slot (the default: a logical replication slot), or read the table in batches"
        )
    return value


def xmin_range(low: int, high: int) -> str:
    """SQL selecting row versions written by transactions ``low <= id < high`` (epoch 0 ids)."""
    if not 0 <= low <= high <= EPOCH:
        raise ValueError(f"not a range of epoch-0 transaction ids: [{low}, {high})")
    return f"{XMIN} >= {low} AND {XMIN} < {high}"
