"""``spark.readStream.format("lakebase")``: a table's inserts, updates and deletes, exactly once, from a
logical replication slot, after a snapshot of the table taken at the slot's start.

Spark's contract (pyspark 4.2+ ``DataSourceStreamReader``, checked on 4.3): one reader object lives on
the driver for the whole query (``latestOffset``, ``partitions``, ``commit``, ``stop``), so it can hold
the slot's snapshot while the first batch reads it; ``initialOffset`` must return the same value after
a restart (the slot is made in the first ``latestOffset``); the ``start`` ``latestOffset`` gets is always
committed, and ``commit(end)`` of a batch comes one batch late (never for the last batch of an
AvailableNow run): both advance the slot, which is therefore never ahead of Spark's commit log, and a
batch Spark runs again reads exactly the same changes.

- Batch 0 (``startingPosition=snapshot``, the default): every row of the table in the snapshot that
  matches the slot's start exactly (``postgres/slots.create_slot``), read in page ranges by the
  executors as inserts at the slot's start LSN. If the driver restarts before it finished, the snapshot
  is gone: the stream fails saying how to start again.
- Later batches: the transactions that committed in ``[start, end)`` (``changes/batches.py``), read by
  one task (one reader per slot). ``end`` is a WAL position the server has flushed and no record
  crosses, so the read sees every transaction before it. ``maxRowsPerTrigger`` bounds a batch by whole
  transactions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow

from ..changes.batches import change_batches
from ..changes.errors import SnapshotLostError
from ..changes.offsets import CHANGES, SNAPSHOT, START, ChangeOffset
from ..changes.shapes import METADATA_COLUMNS, ColumnShape, TableShape
from ..postgres import slots
from ..postgres.pgoutput import lsn_text, parse_lsn
from ..postgres.snapshots import SNAPSHOT as SNAPSHOT_OPTION
from .columns import ReadColumn, table_columns
from .logins import Login
from .options import SourceOptions, SourceOptionsError
from .partitions import SqlPartition

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

__all__ = ["ChangeStreamReader", "StreamSettings", "metadata_arrays", "stream_settings", "table_shape"]

log = logging.getLogger(__name__)

#: How long latestOffset waits for the server to flush the WAL it will read up to (the WAL writer
#: flushes every wal_writer_delay, 200 ms by default, when commits do not wait for it).
FLUSH_WAIT = 30.0


@dataclass(frozen=True)
class StreamSettings:
    """A change stream's options, checked."""

    mode: str  # "slot" (a logical replication slot) or "xmin" (slot-free: rows by transaction id)
    slot: str
    publication: str
    starting: str  # "snapshot" or "latest"
    max_rows: int | None
    partitions: int


MODES = ("slot", "xmin")


def stream_settings(options: SourceOptions) -> StreamSettings:
    mode = (options.get("mode") or "slot").lower()
    if mode not in MODES:
        raise SourceOptionsError(
            "option mode is 'slot' (the default: every insert, update and delete, from a logical replication "
            f"slot) or 'xmin' (no slot: changed rows as they are now, no deletes), got {mode!r}"
        )
    starting = (options.get("startingPosition") or "snapshot").lower()
    if starting not in ("snapshot", "latest"):
        raise SourceOptionsError(
            f"option startingPosition is 'snapshot' (every row, then every change) or 'latest' (changes from "
            f"now on), got {starting!r}"
        )
    max_rows = options.integer("maxRowsPerTrigger", 0) or None
    if max_rows is not None and max_rows < 1:
        raise SourceOptionsError(f"option maxRowsPerTrigger must be at least 1, got {max_rows}")
    partitions = options.integer("numPartitions", 8)
    if partitions < 1:
        raise SourceOptionsError(f"option numPartitions must be at least 1, got {partitions}")
    if mode == "xmin":
        given = [name for name in ("slotName", "publication", "maxRowsPerTrigger") if options.get(name)]
        if given:
            raise SourceOptionsError(
                "a change stream with mode=xmin uses no replication slot and reads each batch's changed "
                f"rows whole: leave out option(s) {', '.join(given)} (or use mode=slot)"
            )
        return StreamSettings(mode, "", "", starting, None, partitions)
    slot = options.get("slotName") or ""
    if not slots.SLOT_NAME.fullmatch(slot):
        raise SourceOptionsError(
            "a change stream needs option slotName: a name of its own for its replication slot, kept across "
            "restarts (lower-case letters, digits and _, at most 63), e.g. 'orders_to_lake'; or option "
            "mode=xmin for a stream without a slot (no deletes)" + (f"; got {slot!r}" if slot else "")
        )
    publication = options.get("publication") or f"lakebase_spark_{slot}"
    return StreamSettings(mode, slot, publication, starting, max_rows, partitions)


def table_shape(conn: psycopg.Connection[Any], options: SourceOptions) -> tuple[list[ReadColumn], TableShape]:
    """The table's columns as the batch reader types them, and as Relation messages name them."""
    if options.table is None:
        raise SourceOptionsError("a change stream reads a table: give option dbtable ('schema.table')")
    columns = table_columns(conn, options.table)
    types = conn.execute(
        "SELECT a.atttypid::int, coalesce(nullif(t.typbasetype, 0), a.atttypid)::int FROM pg_attribute a "
        "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum",
        (options.table.quoted(),),
    ).fetchall()
    shapes = []
    for column, (type_oid, base_oid) in zip(columns, types, strict=True):
        as_text = column.spark_type == "string"
        load_oid = TEXT_ARRAY if column.spark_type == "array<string>" else base_oid
        shapes.append(ColumnShape(column.name, type_oid, load_oid, column.spark_type, as_text))
    return columns, TableShape(options.table, tuple(shapes))


TEXT_ARRAY = 1009  # text[]: arrays the batch reader reads as arrays of strings


class SnapshotPartition(SqlPartition):
    """A page range of the table in the slot's snapshot."""

    def __init__(self, index: int, predicate: str, snapshot: str, lsn: int) -> None:
        super().__init__(index, predicate)
        self.snapshot = snapshot
        self.lsn = lsn


class ChangePartition(InputPartition):
    """The changes of transactions committed in ``[start, end)``."""

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end


class ChangeStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
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
        self._held: slots.HeldSnapshot | None = None
        self._target: int | None = None  # Trigger.AvailableNow's end

    def __getstate__(self) -> dict[str, Any]:  # the driver's connections stay on the driver
        state = dict(self.__dict__)
        state.update(_conn=None, _held=None)
        return state

    # -- the driver --------------------------------------------------------------------------------------

    def initialOffset(self) -> dict[str, str]:
        return ChangeOffset.start().to_json()

    def getDefaultReadLimit(self) -> Any:
        from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadMaxRows

        return ReadMaxRows(self.settings.max_rows) if self.settings.max_rows else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        """Trigger.AvailableNow: read what has committed by now, then stop."""
        self._target = self._flushed_end(self._connection())

    def latestOffset(self, start: dict[str, Any], limit: Any) -> dict[str, str]:
        begin = ChangeOffset.of(start)
        self.shape.check_fingerprint(begin.shape)
        conn = self._connection()
        s = self.settings
        if begin.phase == START:
            return self._begin(conn).to_json()
        state = slots.usable(slots.slot_state(conn, s.slot), s.slot, self.login.database)
        slots.advance(conn, s.slot, begin.lsn)  # ``start`` is committed: the slot may forget what precedes it
        if begin.phase == SNAPSHOT and self._held is not None:
            self._release()  # batch 0 (the snapshot) is committed
        end = self._end(conn, begin.lsn, limit)
        if end is None:
            return start
        log.info(
            "lakebase: change stream %s: next batch [%s, %s) (slot at %s)",
            s.slot,
            lsn_text(begin.lsn),
            lsn_text(end),
            lsn_text(state.confirmed_flush or 0),
        )
        return ChangeOffset(CHANGES, end, self.shape.fingerprint).to_json()

    def partitions(self, start: dict[str, Any], end: dict[str, Any]) -> Sequence[InputPartition]:
        first, last = ChangeOffset.of(start), ChangeOffset.of(end)
        self.shape.check_fingerprint(last.shape)
        if first == last:
            return []
        if last.phase == SNAPSHOT:
            return self._snapshot_partitions(last)
        if last.phase == CHANGES and first.phase == START:
            return []  # startingPosition=latest: nothing before the slot's start
        return [ChangePartition(first.lsn, last.lsn)]

    def commit(self, end: dict[str, Any]) -> None:
        last = ChangeOffset.of(end)
        if last.phase == SNAPSHOT:
            self._release()
        elif last.phase == CHANGES:
            slots.advance(self._connection(), self.settings.slot, last.lsn)

    def stop(self) -> None:
        self._release()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = self.login.psycopg(autocommit=True)  # a current credential for every reconnect
        return self._conn

    def _begin(self, conn: psycopg.Connection[Any]) -> ChangeOffset:
        """The stream's first offset: its slot made (with a snapshot unless it starts at the latest)."""
        s = self.settings
        slots.check_replication(conn)
        table = self.shape.table
        slots.ensure_publication(conn, s.publication, table)
        snapshot = s.starting == "snapshot"
        lsn, held = slots.create_slot(self.login.psycopg, s.slot, snapshot=snapshot)
        self._held = held
        log.info(
            "lakebase: change stream of %s: slot %s made at %s%s",
            table,
            s.slot,
            lsn_text(lsn),
            ", its snapshot held for the first batch" if held else "",
        )
        return ChangeOffset(SNAPSHOT if snapshot else CHANGES, lsn, self.shape.fingerprint)

    def _flushed_end(self, conn: psycopg.Connection[Any]) -> int:
        """A WAL position no record crosses (the insert position now), once the server has flushed it."""
        row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        end = parse_lsn(row[0])
        deadline = time.monotonic() + FLUSH_WAIT
        while True:
            flushed = conn.execute("SELECT pg_current_wal_flush_lsn()::text").fetchone()
            assert flushed is not None
            if parse_lsn(flushed[0]) >= end or time.monotonic() > deadline:
                return end
            time.sleep(0.02)

    def _end(self, conn: psycopg.Connection[Any], start: int, limit: Any) -> int | None:
        """The end of the next batch after ``start``, or None when no change of the table is there yet."""
        from pyspark.sql.streaming.datasource import ReadMaxRows

        s = self.settings
        bound = self._flushed_end(conn)
        if self._target is not None:
            bound = min(bound, self._target)
        if bound <= start:
            return None
        if isinstance(limit, ReadMaxRows):
            peeked = slots.peek(conn, s.slot, s.publication, bound, limit.max_rows)
            return _whole_transactions(peeked, limit.max_rows)
        if not slots.peek(conn, s.slot, s.publication, bound, 1):
            # Nothing of the table's before ``bound``: the slot may move there (other tables' WAL goes).
            slots.advance(conn, s.slot, bound)
            return None
        return bound

    def _snapshot_partitions(self, end: ChangeOffset) -> list[SnapshotPartition]:
        held = self._held
        if held is None or held.lsn != end.lsn or held.connection.closed:
            raise SnapshotLostError(
                f"lakebase: the change stream's first batch (every row of {self.shape.table} at slot "
                f"{self.settings.slot!r}'s start, LSN {lsn_text(end.lsn)}) did not finish before the query "
                "stopped, and the snapshot it reads was held by the stopped driver. To start again: drop "
                "the slot (lakebase_spark.changes.drop_slot(...)) and the query's checkpoint, then start the "
                "query (a new slot, a new snapshot)"
            )
        from ..reading.ranges import page_predicates

        table = self.shape.table
        predicates = page_predicates(self._connection(), table, self.settings.partitions)
        return [SnapshotPartition(i, f"({p})", held.id, held.lsn) for i, p in enumerate(predicates)]

    def _release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    # -- the executors ---------------------------------------------------------------------------------------

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        if isinstance(partition, SnapshotPartition):
            yield from self._read_snapshot(partition)
        else:
            assert isinstance(partition, ChangePartition)
            yield from self._read_changes(partition)

    def _read_snapshot(self, partition: SnapshotPartition) -> Iterator[pa.RecordBatch]:
        import dataclasses

        import pyarrow as pa

        from .reader import LakebaseReader

        raw = dict(self.options.raw, **{SNAPSHOT_OPTION: partition.snapshot})
        options = dataclasses.replace(self.options, raw=raw)
        reader = LakebaseReader(options, self.columns, [c.name for c in self.columns])
        for batch in reader.read(SqlPartition(partition.index, partition.predicate)):
            extra = metadata_arrays(batch.num_rows, "insert", partition.lsn)
            yield pa.RecordBatch.from_arrays(
                [*batch.columns, *extra.values()], names=[*batch.schema.names, *extra]
            )

    def _read_changes(self, partition: ChangePartition) -> Iterator[pa.RecordBatch]:
        from psycopg.pq import Format

        s = self.settings
        with self.login.psycopg(autocommit=True) as conn:
            conn.execute("SET DateStyle = ISO")  # the text the values arrive as
            conn.execute("SET TimeZone = 'UTC'")
            messages = slots.peek(conn, s.slot, s.publication, partition.end, None)
            loaders = []
            for column in self.shape.columns:  # psycopg's text parsers, as a fetch of the column uses
                kind = conn.adapters.get_loader(column.load_oid, Format.TEXT) or conn.adapters.get_loader(
                    0, Format.TEXT
                )
                assert kind is not None
                loaders.append(kind(column.load_oid, conn).load)
            yield from change_batches(messages, self.shape, loaders, partition.start, partition.end)


def metadata_arrays(
    n: int, change_type: str, lsn: int | None, xids: pa.Array | None = None
) -> dict[str, pa.Array]:
    """The metadata columns (``METADATA_COLUMNS``) of ``n`` rows read from the table itself, not the slot."""
    import pyarrow as pa

    arrays = {
        "_change_type": pa.array([change_type] * n, pa.string()),
        "_lsn": pa.nulls(n, pa.int64()) if lsn is None else pa.array([lsn] * n, pa.int64()),
        "_commit_timestamp": pa.nulls(n, pa.timestamp("us", tz="UTC")),
        "_xid": pa.nulls(n, pa.int64()) if xids is None else xids,
        "_missing_columns": pa.nulls(n, pa.list_(pa.string())),
    }
    assert list(arrays) == [name for name, _ in METADATA_COLUMNS]
    return arrays


def _whole_transactions(messages: list[tuple[int, bytes]], max_rows: int) -> int | None:
    """The end of a batch of whole transactions (``messages`` as peeked) holding at most ``max_rows``
    changes, or the first transaction alone if it holds more: its commit message's LSN, the end of the
    transaction's commit record."""
    end, total, changes = None, 0, 0
    for lsn, data in messages:
        kind = data[:1]
        if kind in (b"I", b"U", b"D"):
            changes += 1
        elif kind == b"C":
            if end is not None and total + changes > max_rows:
                break
            total, changes, end = total + changes, 0, lsn
    return end
