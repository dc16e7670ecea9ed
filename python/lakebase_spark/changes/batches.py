"""A change batch: the pgoutput messages of the transactions that committed in ``[start, end)``, turned
into the stream's rows (the table's columns as the batch reader types them, and what each change is).

Rows follow the names of Lakebase's change data feed: ``insert``, ``update_preimage`` and
``update_postimage`` (an update is two rows), ``delete``; with ``_lsn`` (the transaction's commit LSN),
``_commit_timestamp``, ``_xid``, and ``_missing_columns``: the columns whose values the change does not
carry, NULL in the row. Old values follow the table's replica identity: FULL sends whole old rows;
DEFAULT sends the key only (a preimage and a delete miss the other columns), and an update that leaves a
TOASTed value unchanged does not send it (filled from the old row under FULL, missing otherwise). A
missing value is never a silent NULL: it is listed.

A TRUNCATE of the table, or a Relation message whose columns no longer match the stream's schema,
stops the stream with an error naming the change; never wrong data.
"""

from __future__ import annotations

import datetime
import decimal
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from ..names import TableName
from ..postgres import pgoutput as pg
from .errors import ChangeStreamError, SchemaChangedError, TruncatedError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["METADATA_COLUMNS", "ColumnShape", "TableShape", "change_batches", "change_rows"]

#: The columns every change row has after the table's own.
METADATA_COLUMNS = (
    ("_change_type", "string"),
    ("_lsn", "bigint"),
    ("_commit_timestamp", "timestamp"),
    ("_xid", "bigint"),
    ("_missing_columns", "array<string>"),
)
BATCH_ROWS = 10_000


@dataclass(frozen=True)
class ColumnShape:
    """One column of the stream's table."""

    name: str
    #: What Relation messages say it is (``atttypid``), checked against every one the stream gets.
    type_oid: int
    #: The type whose text is parsed (a domain's base type; arrays: the array type).
    load_oid: int
    #: As the batch reader types it (``datasource/columns.py``).
    spark_type: str
    #: Read as its text (types Spark has no type for: uuid, json, inet, enums, intervals...).
    as_text: bool


@dataclass(frozen=True)
class TableShape:
    """The stream's table and its columns, as they were when the stream's schema was made."""

    table: TableName
    columns: tuple[ColumnShape, ...]

    @property
    def fingerprint(self) -> str:
        """A short digest of the columns' names and types (what a checkpoint pins)."""
        import hashlib

        text = "\x00".join(f"{c.name}\x01{c.type_oid}" for c in self.columns)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def check_fingerprint(self, pinned: str) -> None:
        """The checkpoint's columns (``pinned``) must be the table's now."""
        if pinned and pinned != self.fingerprint:
            raise SchemaChangedError(
                f"lakebase: the columns of {self.table} changed since the change stream's checkpoint was "
                f"written (the table now has {[c.name for c in self.columns]}): a change stream keeps its "
                "schema. To go on: apply the change to the sink, then start a new stream (a new slotName and "
                "checkpoint: it begins with a snapshot)"
            )

    def spark_schema(self) -> str:
        columns = [(c.name, c.spark_type) for c in self.columns] + list(METADATA_COLUMNS)
        return ", ".join(f"`{name.replace('`', '``')}` {kind}" for name, kind in columns)

    def check(self, relation: pg.Relation) -> None:
        """A Relation message of the table must still describe the stream's columns."""
        sent = [(c.name, c.type_oid) for c in relation.columns]
        expected = [(c.name, c.type_oid) for c in self.columns]
        if sent != expected:
            raise SchemaChangedError(
                f"lakebase: the columns of {self.table} changed while the change stream ran (it started with "
                f"{[n for n, _ in expected]}, the table now sends {[n for n, _ in sent]}, or a column's type "
                "changed): a change stream keeps its schema. To go on: stop the stream, apply the change to "
                "the sink, then start a new stream (a new slotName and checkpoint: it begins with a snapshot)"
            )


class ChangeRow(NamedTuple):
    change: str
    lsn: int
    committed: datetime.datetime
    xid: int
    values: tuple[pg.Value, ...]
    missing: tuple[str, ...]


def change_rows(
    messages: Iterable[tuple[int, bytes]], shape: TableShape, start: int, end: int
) -> Iterator[ChangeRow]:
    """The table's changes in transactions committed in ``[start, end)`` (others, e.g. ones a slot that
    went back after a crash returns again, are dropped), in commit order."""
    names = [c.name for c in shape.columns]
    relation: pg.Relation | None = None  # the table's latest Relation message
    keys: tuple[int, ...] = ()  # its replica identity's columns
    begin: pg.Begin | None = None
    for _, data in messages:
        message = pg.decode(data)
        if isinstance(message, pg.Begin):
            begin = message
            continue
        if isinstance(message, pg.Commit):
            begin = None
            continue
        if isinstance(message, pg.Relation):
            if (message.namespace, message.name) == (shape.table.schema, shape.table.name):
                shape.check(message)
                relation = message
                keys = tuple(i for i, c in enumerate(message.columns) if c.key)
            continue
        if begin is None or not start <= begin.final_lsn < end:
            continue
        if isinstance(message, pg.Truncate):
            if relation is not None and relation.oid in message.relations:
                raise TruncatedError(
                    f"lakebase: {shape.table} was truncated (transaction {begin.xid}, commit LSN "
                    f"{pg.lsn_text(begin.final_lsn)}): a change stream has no delete to send for it. To go "
                    "on: empty the sink's copy, then start a new stream (a new slotName and checkpoint: it "
                    "begins with a snapshot)"
                )
            continue
        if not isinstance(message, pg.Insert | pg.Update | pg.Delete):
            continue  # Origin, Type and logical decoding messages carry no rows
        if relation is None or message.relation != relation.oid:
            continue  # another table of the publication
        yield from _rows(message, begin, names, keys)


def _rows(
    message: pg.Insert | pg.Update | pg.Delete, begin: pg.Begin, names: list[str], keys: tuple[int, ...]
) -> Iterator[ChangeRow]:
    lsn, committed, xid = begin.final_lsn, begin.commit_time, begin.xid

    def row(change: str, values: tuple[pg.Value, ...]) -> ChangeRow:
        if pg.UNCHANGED not in values:
            return ChangeRow(change, lsn, committed, xid, values, ())
        missing = tuple(n for n, v in zip(names, values, strict=True) if v is pg.UNCHANGED)
        clean = tuple(None if v is pg.UNCHANGED else v for v in values)
        return ChangeRow(change, lsn, committed, xid, clean, missing)

    def key_row(change: str, values: tuple[pg.Value, ...]) -> ChangeRow:
        """The replica identity's columns of ``values``; the others missing."""
        clean: list[pg.Value] = [None] * len(names)
        for i in keys:
            clean[i] = values[i]
        missing = tuple(n for i, n in enumerate(names) if i not in keys)
        return (
            row(change, tuple(clean))
            if pg.UNCHANGED in clean
            else ChangeRow(change, lsn, committed, xid, tuple(clean), missing)
        )

    if isinstance(message, pg.Insert):
        yield row("insert", message.new)
    elif isinstance(message, pg.Delete):
        yield row("delete", message.old) if message.old_kind == "O" else key_row("delete", message.old)
    else:
        old = message.old
        if message.old_kind == "O" and old is not None:  # REPLICA IDENTITY FULL: the whole old row
            new = tuple(o if n is pg.UNCHANGED else n for n, o in zip(message.new, old, strict=True))
            yield row("update_preimage", old)
        else:  # the key: the old one if it changed, else the new row's
            new = message.new
            yield key_row("update_preimage", old if old is not None else message.new)
        yield row("update_postimage", new)


def change_batches(
    rows: Iterable[ChangeRow], shape: TableShape, loaders: list[Any]
) -> Iterator[pa.RecordBatch]:
    """The rows as Arrow batches of the stream's schema; ``loaders[i]`` parses column i's text (psycopg)."""
    chunk: list[ChangeRow] = []
    for change in rows:
        chunk.append(change)
        if len(chunk) == BATCH_ROWS:
            yield _batch(chunk, shape, loaders)
            chunk = []
    if chunk:
        yield _batch(chunk, shape, loaders)


def _batch(rows: list[ChangeRow], shape: TableShape, loaders: list[Any]) -> pa.RecordBatch:
    import pyarrow as pa

    columns = list(zip(*(r.values for r in rows), strict=True)) if shape.columns else []
    arrays = [
        _column(column, list(texts), loaders[i])
        for i, (column, texts) in enumerate(zip(shape.columns, columns, strict=True))
    ]
    arrays += [
        pa.array([r.change for r in rows], pa.string()),
        pa.array([r.lsn for r in rows], pa.int64()),
        pa.array([r.committed for r in rows], pa.timestamp("us", tz="UTC")),
        pa.array([r.xid for r in rows], pa.int64()),
        pa.array([list(r.missing) or None for r in rows], pa.list_(pa.string())),
    ]
    names = [c.name for c in shape.columns] + [name for name, _ in METADATA_COLUMNS]
    return pa.RecordBatch.from_arrays(arrays, names=names)


#: Spark types (and decimals) whose Postgres text Arrow's own cast parses exactly as the Python path
#: would (tests/changes/test_batches.py: every type both ways): a column of a batch with a value the
#: cast refuses (NaN numerics, decimals to round, BC dates, years past 9999, infinities) goes the
#: Python way, and a batch of ordinary values goes ten times faster.
_CASTS = {"smallint", "int", "bigint", "float", "double", "date", "timestamp", "timestamp_ntz"}


def _column(column: ColumnShape, texts: list[pg.Value], load: Any) -> pa.Array:
    """One column of a batch, from Postgres' text of its values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = arrow_type(column.spark_type)
    if column.as_text or kind == pa.string():
        return pa.array(texts, pa.string())
    if column.spark_type == "boolean":
        return pc.equal(pa.array(texts, pa.string()), "t")
    if column.spark_type in _CASTS or pa.types.is_decimal(kind):
        try:
            return pa.array(texts, pa.string()).cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # a value Arrow does not parse (or not exactly): the Python way
    return parsed_column(column, texts, load)


def parsed_column(column: ColumnShape, texts: list[pg.Value], load: Any) -> pa.Array:
    """One column of a batch, each value parsed in Python (psycopg's loader, or ours for dates)."""
    import pyarrow as pa

    kind = arrow_type(column.spark_type)
    if column.as_text or kind == pa.string():
        return pa.array(texts, pa.string())
    if column.spark_type in ("date", "timestamp", "timestamp_ntz"):
        # Parsed here: Python's datetime (psycopg's loaders) holds no BC dates and no infinity.
        date = column.spark_type == "date"
        parse, width = (_date_days, pa.int32()) if date else (_timestamp_micros, pa.int64())
        return pa.array([None if t is None else parse(str(t)) for t in texts], width).view(kind)
    return pa.array([None if t is None else _fit(load(str(t).encode()), kind) for t in texts], kind)


#: Decimal arithmetic wide enough for any numeric a decimal(38, s) holds (the default context has 28 digits).
_WIDE = decimal.Context(prec=100)


def _fit(value: Any, kind: Any) -> Any:
    """A loaded value as Spark's type of the column holds it (decimals rounded to the column's scale)."""
    import pyarrow as pa

    if isinstance(value, decimal.Decimal) and pa.types.is_decimal(kind):
        if not value.is_finite():
            return None  # NaN and infinities: Spark decimals hold none (the batch reader reads them as NULL)
        exponent = decimal.Decimal(1).scaleb(-kind.scale)
        return value.quantize(exponent, rounding=decimal.ROUND_HALF_UP, context=_WIDE)
    if isinstance(value, list) and pa.types.is_list(kind):
        return [None if v is None else _fit(v, kind.value_type) for v in value]
    return value


def arrow_type(spark_type: str) -> Any:
    """The Arrow type of a Spark type string as the batch reader writes them."""
    import pyarrow as pa

    if spark_type.startswith("array<") and spark_type.endswith(">"):
        return pa.list_(arrow_type(spark_type[6:-1]))
    if spark_type.startswith("decimal("):
        precision, scale = (int(p) for p in spark_type[8:-1].split(","))
        return pa.decimal128(precision, scale)
    return {
        "boolean": pa.bool_(),
        "smallint": pa.int16(),
        "int": pa.int32(),
        "bigint": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "string": pa.string(),
        "binary": pa.binary(),
        "date": pa.date32(),
        "timestamp_ntz": pa.timestamp("us"),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[spark_type]


# -- dates and timestamps, from Postgres' ISO text (DateStyle ISO), into Arrow's integers -------------------

_MOMENT = re.compile(
    r"(\d{4,})-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?)?"
    r"(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?( BC)?"
)
#: Spark's Postgres dialect reads infinite dates and timestamps as the greatest and least it holds.
_INFINITE_DAYS = (2932896, -719162)  # 9999-12-31 and 0001-01-01
_INFINITE_MICROS = (253402300799999999, -62135596800000000)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (astronomical years: 1 BC is 0)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parts(text: str) -> tuple[int, int]:
    """(days, microseconds since midnight, at UTC) of an ISO date or timestamp text."""
    match = _MOMENT.fullmatch(text)
    if match is None:
        raise ChangeStreamError(f"lakebase: cannot read {text!r} as a date or timestamp (DateStyle ISO)")
    year, month, day, hour, minute, second, fraction, sign, oh, om, osec, bc = match.groups()
    year_number = int(year)
    if bc:
        year_number = 1 - year_number
    days = _days_from_civil(year_number, int(month), int(day))
    micros = ((int(hour or 0) * 60 + int(minute or 0)) * 60 + int(second or 0)) * 1_000_000
    micros += int((fraction or "0").ljust(6, "0"))
    if sign:
        offset = (int(oh) * 3600 + int(om or 0) * 60 + int(osec or 0)) * 1_000_000
        micros -= offset if sign == "+" else -offset
    return days, micros


def _date_days(text: str) -> int:
    if text in ("infinity", "-infinity"):
        return _INFINITE_DAYS[text.startswith("-")]
    return _parts(text)[0]


def _timestamp_micros(text: str) -> int:
    if text in ("infinity", "-infinity"):
        return _INFINITE_MICROS[text.startswith("-")]
    days, micros = _parts(text)
    return days * 86_400_000_000 + micros
