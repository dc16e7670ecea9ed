"""One moment of a database for every connection of a read: the driver exports a snapshot
(``pg_export_snapshot()`` in a REPEATABLE READ transaction it keeps open) and each partition's
connection imports it (``SET TRANSACTION SNAPSHOT``, first in its own REPEATABLE READ transaction), as
DuckDB's Postgres scanner does. Rows moved, added or deleted while the read runs are then seen by
every partition as they were at the export: none is read twice or missed.

The snapshot lives as long as its exporting transaction: until :meth:`Snapshot.close`, the end of a
``with`` block, or ``hold`` seconds, whichever comes first. A partition that starts later fails
with a message saying so (the JVM provider's ``SharedSnapshot`` and :func:`import_snapshot` here), never
with a silently inconsistent result. An open transaction keeps Postgres from vacuuming rows deleted
after it began, so holds are bounded.
"""

from __future__ import annotations

import logging
import re
import threading
import weakref
from typing import TYPE_CHECKING, Any

from ..errors import LakebaseSparkError
from ..targets import DEFAULT_DATABASE, Address, Target

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient

    from ..serving.service import BrokerService

__all__ = [
    "DEFAULT_HOLD",
    "SNAPSHOT",
    "Snapshot",
    "SnapshotError",
    "check_hold",
    "export_snapshot",
    "import_snapshot",
]

log = logging.getLogger(__name__)

#: The option that carries a read's snapshot id to its partitions (LakebaseOptions.SNAPSHOT in Java).
SNAPSHOT = "lakebase.snapshot"
#: What pg_export_snapshot() returns, e.g. 00000003-0000001B-1 (LakebaseOptions.SNAPSHOT_PATTERN).
SNAPSHOT_PATTERN = "[0-9A-F]{1,16}(-[0-9A-F]{1,16}){1,3}"
#: How long a snapshot is held unless closed sooner, in seconds.
DEFAULT_HOLD = 3600.0


def check_hold(hold: float) -> None:
    """``hold`` is a positive number of seconds (checked before any connection is opened)."""
    if isinstance(hold, bool) or not isinstance(hold, (int, float)) or not hold > 0:
        raise SnapshotError(f"hold must be a positive number of seconds, got {hold!r}")


class SnapshotError(LakebaseSparkError):
    """A consistent read's snapshot could not be exported, or is no longer held."""


class Snapshot:
    """A snapshot exported on ``connection`` and held open: its :attr:`id` goes into a read's options.

    Use as a context manager to bound it to a block (several reads, e.g. of tables to be joined, may
    share one: they all see the same moment), or let ``hold`` end it. Thread-safe.
    """

    def __init__(
        self,
        connection: psycopg.Connection[Any],
        where: str,
        *,
        hold: float = DEFAULT_HOLD,
        scope: object = None,
    ) -> None:
        #: What the snapshot is of (the target and database), to refuse a read of another database.
        self.scope = scope
        check_hold(hold)
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = connection
        self.where = where
        try:
            # A server-wide idle-in-transaction timeout would end the hold early: this session opts out.
            connection.execute("SET idle_in_transaction_session_timeout = 0")
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = connection.execute("SELECT pg_export_snapshot()").fetchone()
        except Exception as e:
            connection.close()
            raise SnapshotError(f"could not export a snapshot on {where} for a consistent read: {e}") from e
        assert row is not None
        self.id: str = str(row[0])
        if not re.fullmatch(SNAPSHOT_PATTERN, self.id):
            connection.close()
            raise SnapshotError(f"Postgres returned an unexpected snapshot id {self.id!r} on {where}")
        _held.add(self)
        self._timer = threading.Timer(hold, self._expire)
        self._timer.daemon = True
        self._timer.start()
        log.info("lakebase: holding snapshot %s on %s for up to %.0f s", self.id, where, hold)

    def _expire(self) -> None:
        if not self.closed:
            log.info("lakebase: snapshot %s reached its hold time; releasing it", self.id)
        self.close()

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._connection is None or self._connection.closed

    def check(self) -> None:
        """Raise :class:`SnapshotError` if the snapshot is no longer held."""
        if self.closed:
            raise SnapshotError(
                f"snapshot {self.id} on {self.where} is no longer held (closed, or its hold ran out); "
                "export a new one"
            )

    def options(self) -> dict[str, str]:
        """The read option that makes every partition import this snapshot."""
        return {SNAPSHOT: self.id}

    def close(self) -> None:
        """End the exporting transaction: reads that have not started their partitions can no longer run."""
        with self._lock:
            connection, self._connection = self._connection, None
        self._timer.cancel()
        if connection is not None:
            connection.close()

    @staticmethod
    def close_all() -> None:
        """Close every snapshot this process still holds (those reads made on their own, too)."""
        for snapshot in list(_held):
            snapshot.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "held"
        return f"Snapshot({self.id!r}, {self.where}, {state})"


#: The snapshots this process holds (the timer thread keeps each alive until its hold ends).
_held: weakref.WeakSet[Snapshot] = weakref.WeakSet()


def lost_message(snapshot: str, where: str, failure: object) -> str:
    """Why a partition could not import ``snapshot`` and what to do (the JVM's SharedSnapshot.lost says
    the same)."""
    return (
        f"lakebase: this consistent read's snapshot {snapshot} cannot be imported on {where} ({failure}). "
        "The transaction that exported it has ended (the read ran longer than its snapshot is held, the "
        "driver's coordinating connection was lost, or Postgres restarted), or this host is another server "
        "than the one that exported it. Read again (a new read exports a new snapshot), or read with "
        "consistent=False to let each partition see its own moment"
    )


def import_snapshot(cursor: Any, snapshot: str, where: str) -> None:
    """Make a DB-API cursor's new transaction see ``snapshot`` (first statements of the transaction)."""
    if not re.fullmatch(SNAPSHOT_PATTERN, snapshot):
        raise SnapshotError(
            f"option {SNAPSHOT} must be a snapshot id from pg_export_snapshot(), got {snapshot!r}"
        )
    try:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
    except Exception as e:
        raise SnapshotError(lost_message(snapshot, where, _first_line(e))) from None


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def export_snapshot(
    endpoint: str | None = None,
    *,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    hold: float = DEFAULT_HOLD,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    address: Address | None = None,
) -> Snapshot:
    """Export a snapshot of ``database`` and hold it for ``hold`` seconds (or until closed): reads given
    ``snapshot=`` see that one moment. Use it as a context manager to read several tables consistently::

        with lakebase_spark.export_snapshot(endpoint, database="shop") as snap:
            orders = lakebase_spark.read(spark, "public.orders", endpoint=endpoint, database="shop",
                                         snapshot=snap)
            lines = lakebase_spark.read(spark, "public.order_lines", endpoint=endpoint, database="shop",
                                        snapshot=snap)
            orders.join(lines, "order_id").write.saveAsTable("main.sales.order_lines_at_one_moment")

    ``address``: where the endpoint listens, if already looked up.
    """
    from ..serving.service import shared_broker_service
    from .connection import connect, resolve_address

    target = Target.of(endpoint, instance)
    check_hold(hold)
    service = broker if broker is not None else shared_broker_service(workspace_client)
    address = address or resolve_address(service.broker, **target.keywords())
    connection = connect(
        **target.keywords(), database=database, tokens=service.broker, address=address, autocommit=True
    )
    where = f"{target} ({address.host}:{address.port}, database {database!r})"
    return Snapshot(connection, where, hold=hold, scope=(target, database))
