"""``spark.readStream.format("lakebase").option("mode", "xmin")``: a change stream without a replication
slot, for roles without REPLICATION. Each batch holds the current state of the rows that transactions
in its range of transaction ids wrote (``_change_type`` ``upsert``); deletes are not seen.

A batch ends at a horizon: ``pg_snapshot_xmin(pg_current_snapshot())``, the oldest transaction still
running (``changes/xids.py``). Every transaction below it has finished, so the rows it wrote are
visible now and stay so until a later transaction changes them again (that version then has a newer
``xmin``, in a later batch). A long transaction holds the horizon back until it ends: its rows come
in the batch that covers it, never lost for having committed late. Batch ``[a, b)`` reads the rows
whose ``xmin`` is in ``[a, b)``: each row version falls in exactly one batch, so a sink that upserts
by key ends with the table's rows (less its deletes). A batch Spark runs again after a failure reads
the rows as they are then: the same versions, or newer ones that later batches also carry.

The cost: every batch scans the whole table (no index orders rows by ``xmin``), in page ranges on the
executors as the batch reader does. Nothing is held on the server between batches: no slot, no WAL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow

from ..changes.errors import SchemaChangedError
from ..changes.offsets import CHANGES, START, XminOffset
from ..changes.shapes import TableShape
from ..changes.xids import XMIN, horizon, xmin_range
from .change_stream import StreamSettings, metadata_arrays, table_shape
from .columns import ReadColumn
from .logins import Login
from .options import SourceOptions
from .partitions import SqlPartition

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

__all__ = ["XminStreamReader"]

log = logging.getLogger(__name__)

#: The row version's writer, read beside the table's columns as the batch's ``_xid``.
XID_COLUMN = ReadColumn("_xid", "bigint", XMIN)


class XminStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Built on the driver (no side effects: Spark builds and pickles readers more than once)."""

    def __init__(
        self, options: SourceOptions, columns: list[ReadColumn], shape: TableShape, settings: StreamSettings
    ) -> None:
        assert options.login is not None
        self.options = options
        self.login: Login = options.login
        self.columns = columns
        self.shape = shape
        self.settings = settings
        self._conn: psycopg.Connection[Any] | None = None
        self._target: int | None = None  # Trigger.AvailableNow's end

    def __getstate__(self) -> dict[str, Any]:  # the driver's connection stays on the driver
        return dict(self.__dict__, _conn=None)

    # -- the driver --------------------------------------------------------------------------------------

    def initialOffset(self) -> dict[str, str]:
        return XminOffset.start().to_json()

    def prepareForTriggerAvailableNow(self) -> None:
        """Trigger.AvailableNow: read what has committed by now, then stop."""
        self._target = horizon(self._connection())

    def latestOffset(self, start: dict[str, Any], limit: Any) -> dict[str, str]:
        begin = XminOffset.of(start)
        conn = self._connection()
        self._check_columns(conn, begin.shape)
        end = horizon(conn)
        if self._target is not None:
            end = min(end, self._target)
        if begin.phase != START and end <= begin.xid:
            return start
        log.info(
            "lakebase: change stream of %s (mode=xmin): next batch, transactions [%d, %d)",
            self.shape.table,
            0 if begin.phase == START else begin.xid,
            end,
        )
        return XminOffset(CHANGES, end, self.shape.fingerprint).to_json()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        first, last = XminOffset.of(start), XminOffset.of(end)
        if first == last:
            return []
        if first.phase == START and self.settings.starting == "latest":
            return []  # the first batch only sets where the changes begin
        low = 0 if first.phase == START else first.xid
        from ..reading.ranges import page_predicates

        rows = xmin_range(low, last.xid)
        predicates = page_predicates(self._connection(), self.shape.table, self.settings.partitions)
        return [SqlPartition(i, f"({p}) AND {rows}") for i, p in enumerate(predicates)]

    def commit(self, end: dict[str, Any]) -> None:
        """Nothing to release: the server keeps nothing for this stream."""

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.login.psycopg(autocommit=True)  # a current credential for every reconnect
        return self._conn

    def _check_columns(self, conn: psycopg.Connection[Any], pinned: str) -> None:
        """The checkpoint's columns and the table's now must be the stream's."""
        self.shape.check_fingerprint(pinned)
        _, now = table_shape(conn, self.options)
        if now.fingerprint != self.shape.fingerprint:
            raise SchemaChangedError(
                f"lakebase: the columns of {self.shape.table} changed while the change stream ran (it "
                f"started with {[c.name for c in self.shape.columns]}, the table now has "
                f"{[c.name for c in now.columns]}, or a column's type changed): a change stream keeps its "
                "schema. To go on: apply the change to the sink, then start the stream with a new checkpoint "
                "(startingPosition=snapshot reads every row again)"
            )

    # -- the executors -----------------------------------------------------------------------------------

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from .reader import LakebaseReader

        assert isinstance(partition, SqlPartition)
        columns = [*self.columns, XID_COLUMN]
        reader = LakebaseReader(self.options, columns, [c.name for c in columns])
        names = [c.name for c in self.columns]
        for batch in reader.read(partition):
            n = batch.num_rows
            extra = metadata_arrays(n, "upsert", None, xids=batch.column(len(names)))
            yield pa.RecordBatch.from_arrays(
                [*batch.columns[: len(names)], *extra.values()], names=[*names, *extra]
            )
