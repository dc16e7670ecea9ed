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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..names import TableName
from ..postgres import pgoutput as pg
from .errors import ChangeStreamError, SchemaChangedError, TruncatedError
from .tuples import PADDING, TEXT, UNCHANGED, Tuples, be_uint, read_tuples, texts

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["CHANGE_TYPES", "METADATA_COLUMNS", "ColumnShape", "TableShape", "change_batches"]

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


#: ``_change_type`` values, by the codes the decoder gives them.
CHANGE_TYPES = ("insert", "update_preimage", "update_postimage", "delete")
_INSERT, _PRE, _POST, _DELETE = range(4)
_I, _U, _D, _N, _K, _O = (ord(c) for c in "IUDNKO")
#: A batch holds the rows of at most this many messages, and of at most this many bytes of them.
BATCH_MESSAGES = BATCH_ROWS // 2
BATCH_BYTES = 256 << 20


@dataclass(frozen=True)
class _Transactions:
    """The transactions of a change batch's messages (Begin .. Commit), and the table's Relations."""

    begins: np.ndarray  # message index of each Begin
    commits: np.ndarray  # message index of its Commit (past the end if none)
    wanted: np.ndarray  # committed in [start, end)
    lsn: np.ndarray  # its commit LSN
    micros: np.ndarray  # its commit time, microseconds since 1970 (UTC)
    xid: np.ndarray
    relations: np.ndarray  # message index of each Relation of the table
    oids: np.ndarray  # its oid
    keys: np.ndarray  # (relations, columns) bool: the replica identity's columns


def change_batches(
    messages: Sequence[tuple[int, bytes]], shape: TableShape, loaders: list[Any], start: int, end: int
) -> Iterator[pa.RecordBatch]:
    """The table's changes in transactions committed in ``[start, end)`` (others, e.g. ones a slot that
    went back after a crash returns again, are dropped), in commit order, as Arrow batches of the
    stream's schema; ``loaders[i]`` parses column i's text where Arrow cannot (psycopg's loader)."""
    import numpy as np

    datas = [data for _, data in messages]
    sizes = np.fromiter(map(len, datas), np.int64, len(datas))
    if not len(datas):
        return
    if not sizes.all():
        raise pg.PgoutputError("an empty pgoutput message")
    offsets = np.zeros(len(datas) + 1, np.int64)
    np.cumsum(sizes, out=offsets[1:])
    buf = np.frombuffer(b"".join(datas) + bytes(PADDING), np.uint8)
    kinds = buf[offsets[:-1]]
    rows = (kinds == _I) | (kinds == _U) | (kinds == _D)
    tx = _transactions(datas, np.flatnonzero(~rows), shape, start, end)
    # The row messages of the table in wanted transactions, each with its transaction and Relation
    candidates = np.flatnonzero(rows)
    if np.any(sizes[candidates] < 7):
        raise pg.PgoutputError("a pgoutput row message ends early")
    t = np.searchsorted(tx.begins, candidates, side="right") - 1
    r = np.searchsorted(tx.relations, candidates, side="right") - 1
    t_at, r_at = np.maximum(t, 0), np.maximum(r, 0)
    ok = (t >= 0) & (r >= 0)
    if len(tx.begins):
        ok &= (candidates < tx.commits[t_at]) & tx.wanted[t_at]
    if len(tx.relations):
        ok &= be_uint(buf, offsets[candidates] + 1, 4) == tx.oids[r_at]
    chosen, chosen_tx, chosen_rel = candidates[ok], t_at[ok], r_at[ok]
    ends = np.cumsum(sizes[chosen])
    first = 0
    while first < len(chosen):
        spent = int(ends[first - 1]) if first else 0
        last = min(first + BATCH_MESSAGES, int(np.searchsorted(ends, spent + BATCH_BYTES, side="right")))
        last = max(last, first + 1)
        at, txs, rels = chosen[first:last], chosen_tx[first:last], chosen_rel[first:last]
        yield _batch(buf, offsets[at], sizes[at], tx, txs, rels, shape, loaders)
        first = last


def _transactions(
    datas: list[bytes], others: np.ndarray, shape: TableShape, start: int, end: int
) -> _Transactions:
    """Begin, Commit, Relation and Truncate messages (one per transaction or fewer), in Python."""
    import numpy as np

    begins: list[int] = []
    commits: list[int] = []
    wanted: list[bool] = []
    lsns: list[int] = []
    micros: list[int] = []
    xids: list[int] = []
    relations: list[int] = []
    oids: list[int] = []
    keys: list[list[bool]] = []
    for index in others.tolist():
        message = pg.decode(datas[index])
        if isinstance(message, pg.Begin):
            begins.append(index)
            commits.append(len(datas))
            wanted.append(start <= message.final_lsn < end)
            lsns.append(message.final_lsn)
            micros.append((message.commit_time - _UNIX) // _MICROSECOND)
            xids.append(message.xid)
        elif isinstance(message, pg.Commit):
            if begins:
                commits[-1] = index
        elif isinstance(message, pg.Relation):
            if (message.namespace, message.name) == (shape.table.schema, shape.table.name):
                shape.check(message)
                relations.append(index)
                oids.append(message.oid)
                keys.append([c.key for c in message.columns])
        elif isinstance(message, pg.Truncate):
            open_ = begins and commits[-1] > index
            if open_ and wanted[-1] and oids and oids[-1] in message.relations:
                raise TruncatedError(
                    f"lakebase: {shape.table} was truncated (transaction {xids[-1]}, commit LSN "
                    f"{pg.lsn_text(lsns[-1])}): a change stream has no delete to send for it. To go "
                    "on: empty the sink's copy, then start a new stream (a new slotName and checkpoint: it "
                    "begins with a snapshot)"
                )
        # Origin, Type and logical decoding messages carry no rows
    columns = len(shape.columns)
    return _Transactions(
        np.array(begins, np.int64),
        np.array(commits, np.int64),
        np.array(wanted, bool),
        np.array(lsns, np.int64),
        np.array(micros, np.int64),
        np.array(xids, np.int64),
        np.array(relations, np.int64),
        np.array(oids, np.int64),
        np.array(keys, bool).reshape(len(keys), columns),
    )


_UNIX = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)


def _batch(
    buf: np.ndarray,
    at: np.ndarray,
    sizes: np.ndarray,
    tx: _Transactions,
    txs: np.ndarray,
    rels: np.ndarray,
    shape: TableShape,
    loaders: list[Any],
) -> pa.RecordBatch:
    """The rows of the row messages at ``at`` (of ``sizes`` bytes, in transactions ``txs``, under
    Relations ``rels``): an insert a row, an update two (its old row or key, then the new), a delete one.
    Old values follow the replica identity: 'O' whole rows, 'K' keys; an update without either (the key
    did not change) has the new row's key as its old one. A value not sent is NULL and listed missing."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = len(shape.columns)
    limit = at + sizes
    kind, marker = buf[at], buf[at + 5]
    insert, update, delete = kind == _I, kind == _U, kind == _D
    has_old = (update | delete) & ((marker == _K) | (marker == _O))
    if np.any(insert & (marker != _N)):
        raise pg.PgoutputError("an insert's tuple is not marked 'N'")
    if np.any(delete & ~has_old):
        raise pg.PgoutputError("a delete's old tuple is not marked 'K' or 'O'")
    if np.any(update & ~has_old & (marker != _N)):
        raise pg.PgoutputError("an update's tuple is not marked 'K', 'O' or 'N'")
    old = _tuples_of(buf, at + 6, limit, has_old, columns)
    new_at = np.where(has_old, old.ends + 1, at + 6)
    if np.any(update & has_old & (buf[np.minimum(old.ends, limit - 1)] != _N)) or np.any(
        update & has_old & (old.ends >= limit)
    ):
        raise pg.PgoutputError("an update's new tuple is not marked 'N'")
    new = _tuples_of(buf, new_at, limit, insert | update, columns)
    if np.any(np.where(delete, old.ends, new.ends) != limit):
        raise pg.PgoutputError("bytes left after a pgoutput row message")
    # The output rows: each message's, in order
    count = np.where(update, 2, 1)
    message = np.repeat(np.arange(len(at)), count)
    second = np.arange(len(message)) - (np.cumsum(count) - count)[message]
    kind_of, old_kind, old_sent = kind[message], np.where(has_old, marker, 0)[message], has_old[message]
    pre = (kind_of == _U) & (second == 0)
    post = (kind_of == _U) & (second == 1)
    from_old = (kind_of == _D) | (pre & old_sent)
    key_only = (((kind_of == _D) | pre) & (old_kind == _K)) | (pre & ~old_sent)
    fill = post & (old_kind == _O)  # REPLICA IDENTITY FULL: unchanged TOAST values from the old row
    code = np.where(kind_of == _I, _INSERT, np.where(kind_of == _D, _DELETE, np.where(pre, _PRE, _POST)))
    keys = tx.keys[rels[message]].T  # (columns, rows)
    arrays, missing = [], np.zeros((columns, len(message)), bool)
    for c, column in enumerate(shape.columns):
        source = np.where(from_old, old.kinds[c][message], new.kinds[c][message])
        starts = np.where(from_old, old.starts[c][message], new.starts[c][message])
        lengths = np.where(from_old, old.lengths[c][message], new.lengths[c][message])
        filled = fill & (source == UNCHANGED)
        if filled.any():
            source = np.where(filled, old.kinds[c][message], source)
            starts = np.where(filled, old.starts[c][message], starts)
            lengths = np.where(filled, old.lengths[c][message], lengths)
        masked = key_only & ~keys[c]
        missing[c] = masked | (source == UNCHANGED)
        strings = texts(buf, starts, lengths, (source == TEXT) & ~masked)
        arrays.append(_column(column, strings, loaders[c]))
    transaction = txs[message]
    names = [c.name for c in shape.columns]
    arrays += [
        pc.take(pa.array(CHANGE_TYPES, pa.string()), pa.array(code, pa.int8())),
        pa.array(tx.lsn[transaction], pa.int64()),
        pa.array(tx.micros[transaction], pa.int64()).view(pa.timestamp("us", tz="UTC")),
        pa.array(tx.xid[transaction], pa.int64()),
        _missing(missing, names),
    ]
    return pa.RecordBatch.from_arrays(arrays, names=names + [name for name, _ in METADATA_COLUMNS])


def _tuples_of(buf: np.ndarray, at: np.ndarray, limit: np.ndarray, which: np.ndarray, columns: int) -> Tuples:
    """The tuples at ``at`` of the messages ``which`` selects; NULLs for the others."""
    if which.all():
        return read_tuples(buf, at, limit, columns)
    out = Tuples.empty(columns, len(at))
    if which.any():
        read = read_tuples(buf, at[which], limit[which], columns)
        out.kinds[:, which], out.starts[:, which] = read.kinds, read.starts
        out.lengths[:, which] = read.lengths
        out.ends[which] = read.ends
    return out


def _missing(missing: np.ndarray, names: list[str]) -> pa.Array:
    """``_missing_columns``: per row the names of the columns it does not carry (NULL when none)."""
    import numpy as np
    import pyarrow as pa

    counts = missing.sum(axis=0)
    offsets = np.zeros(len(counts) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    _, columns = np.nonzero(missing.T)  # row-major: each row's columns in order
    values = pa.array(names, pa.string()).take(pa.array(columns, pa.int64()))
    return pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))


#: Spark types (and decimals) whose Postgres text Arrow's own cast parses exactly as the Python path
#: would (tests/changes/test_batches.py: every type both ways): a column of a batch with a value the
#: cast refuses (NaN numerics, decimals to round, BC dates, years past 9999, infinities) goes the
#: Python way, and a batch of ordinary values goes ten times faster.
_CASTS = {"smallint", "int", "bigint", "float", "double", "date", "timestamp", "timestamp_ntz"}


def _column(column: ColumnShape, texts: pa.Array, load: Any) -> pa.Array:
    """One column of a batch, from Postgres' text of its values (an Arrow string array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = arrow_type(column.spark_type)
    if column.as_text or kind == pa.string():
        return texts
    if column.spark_type == "boolean":
        return pc.equal(texts, "t")
    if column.spark_type in _CASTS or pa.types.is_decimal(kind):
        try:
            return texts.cast(kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # a value Arrow does not parse (or not exactly): the Python way
    return parsed_column(column, texts.to_pylist(), load)


def parsed_column(column: ColumnShape, texts: list[str | None], load: Any) -> pa.Array:
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
