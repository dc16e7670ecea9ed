"""pgoutput's row data, many messages at once: the TupleData of every Insert, Update and Delete of a
change batch read by numpy over the messages' bytes, one pass per column, and the text values gathered
into Arrow string arrays; no Python object per value. (A Python loop per value costs ~7 µs a row of
five columns, more than Postgres takes to decode the change: ``bench/`` case 11.)

A TupleData is ``int16`` columns, then per column a kind byte: ``t`` (``int32`` length, then the
value's text), ``n`` (NULL) or ``u`` (an unchanged TOAST value: no value sent). ``b`` (binary) comes only
with the ``binary`` option, which the stream never asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..postgres.pgoutput import PgoutputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["NULL", "TEXT", "UNCHANGED", "Tuples", "be_uint", "read_tuples", "texts"]

TEXT, NULL, UNCHANGED = ord("t"), ord("n"), ord("u")
#: Bytes after the last message, so that a read past a message's end stays inside the buffer (every
#: value read there is then refused by the message's end).
PADDING = 8


@dataclass(frozen=True)
class Tuples:
    """The tuples of ``n`` messages: per column (rows of the arrays) and message (their columns)."""

    kinds: np.ndarray  # (columns, n) uint8: TEXT, NULL or UNCHANGED
    starts: np.ndarray  # (columns, n) int64: where each text value begins in the buffer
    lengths: np.ndarray  # (columns, n) int64: its length in bytes (0 unless TEXT)
    ends: np.ndarray  # (n,) int64: where each tuple ends

    @staticmethod
    def empty(columns: int, n: int) -> Tuples:
        """``n`` tuples of NULLs (messages without the tuple)."""
        kinds = np.full((columns, n), NULL, np.uint8)
        starts, lengths = np.zeros((columns, n), np.int64), np.zeros((columns, n), np.int64)
        return Tuples(kinds, starts, lengths, np.zeros(n, np.int64))


def be_uint(buf: np.ndarray, at: np.ndarray, size: int) -> np.ndarray:
    """The big-endian unsigned integers of ``size`` bytes at positions ``at`` (int64)."""
    value = np.zeros(len(at), np.int64)
    for i in range(size):
        value = (value << 8) | buf[at + i]
    return value


def read_tuples(buf: np.ndarray, at: np.ndarray, limit: np.ndarray, columns: int) -> Tuples:
    """The TupleData starting at positions ``at`` of ``buf`` (a message's ends at ``limit``), each of
    ``columns`` columns (the stream's table; Relation messages are checked to match it)."""
    n = len(at)
    if n and np.any(at + 2 > limit):
        raise PgoutputError("a pgoutput message ends early (in a tuple's column count)")
    counts = be_uint(buf, at, 2)
    if n and np.any(counts != columns):
        got = int(counts[np.argmax(counts != columns)])
        raise PgoutputError(f"a pgoutput tuple has {got} columns, the stream's table {columns}")
    kinds = np.empty((columns, n), np.uint8)
    starts = np.empty((columns, n), np.int64)
    lengths = np.zeros((columns, n), np.int64)
    position = at + 2
    for c in range(columns):
        if n and np.any(position >= limit):
            raise PgoutputError("a pgoutput message ends early (in a tuple)")
        kind = buf[position]
        text = kind == TEXT
        if not np.all(text | (kind == NULL) | (kind == UNCHANGED)):
            bad = chr(int(kind[np.argmax(~(text | (kind == NULL) | (kind == UNCHANGED)))]))
            raise PgoutputError(f"unexpected tuple value kind {bad!r} (the stream is read as text)")
        length = np.where(text, be_uint(buf, np.minimum(position + 1, len(buf) - 4), 4), 0)
        if np.any(length >= 1 << 31):  # a negative int32
            raise PgoutputError("a pgoutput value has a negative length")
        kinds[c], starts[c], lengths[c] = kind, position + 5, length
        position = position + 1 + np.where(text, 4 + length, 0)
    if n and np.any(position > limit):
        raise PgoutputError("a pgoutput message ends early (in a tuple)")
    return Tuples(kinds, starts, lengths, position)


def texts(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, valid: np.ndarray) -> pa.Array:
    """The values at ``starts``/``lengths`` of ``buf`` as an Arrow string array (NULL where not
    ``valid``), checked to be UTF-8 as Postgres' text is."""
    import pyarrow as pa

    lengths = np.where(valid, lengths, 0)
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    gather = np.repeat(starts - offsets[:-1], lengths) + np.arange(total, dtype=np.int64)
    data = buf[gather]
    if total >= 1 << 31:
        raise PgoutputError(f"a change batch's column holds {total:,} bytes: more than an Arrow string array")
    validity = pa.py_buffer(np.packbits(valid, bitorder="little"))
    array = pa.Array.from_buffers(
        pa.string(), len(lengths), [validity, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)]
    )
    try:
        array.validate(full=True)
    except pa.ArrowInvalid as e:
        raise PgoutputError(f"a pgoutput text value is not UTF-8: {e}") from None
    return array
