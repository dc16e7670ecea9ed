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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..postgres import pgoutput as pg
from .errors import TruncatedError
from .shapes import METADATA_COLUMNS, TableShape
from .tuples import PADDING, TEXT, UNCHANGED, Tuples, be_uint, read_tuples, texts
from .values import typed_column

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["CHANGE_TYPES", "change_batches"]

#: ``_change_type`` values, by the codes the decoder gives them.
CHANGE_TYPES = ("insert", "update_preimage", "update_postimage", "delete")
_INSERT, _PRE, _POST, _DELETE = range(4)
_I, _U, _D, _N, _K, _O = (ord(c) for c in "IUDNKO")
#: A batch holds the rows of at most this many messages (10,000 rows at most), and of this many bytes.
BATCH_MESSAGES = 5_000
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
        arrays.append(typed_column(column, strings, loaders[c]))
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
