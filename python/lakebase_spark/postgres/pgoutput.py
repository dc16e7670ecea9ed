"""A decoder of ``pgoutput``, Postgres' logical replication output (protocol version 1, text values).

``pg_logical_slot_peek_binary_changes(slot, upto, n, 'proto_version', '1', 'publication_names', p)``
returns one row per message: ``(lsn, xid, data)``. This module turns ``data`` into the messages of the
"Logical Replication Message Formats" chapter of the Postgres documentation. No maintained decoder is
on PyPI; this one is small and tested against real server output (``tests/postgres/test_pgoutput.py``).

Values stay as Postgres' text output (``TEXT``), ``None`` (NULL) or :data:`UNCHANGED` (a TOAST value
the update did not change: pgoutput sends no value for it, and it must never be taken for data).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import LakebaseSparkError

__all__ = [
    "UNCHANGED",
    "Begin",
    "Column",
    "Commit",
    "Delete",
    "Insert",
    "LogicalMessage",
    "Message",
    "Origin",
    "PgoutputError",
    "Relation",
    "Truncate",
    "TypeMessage",
    "Update",
    "Value",
    "decode",
    "lsn_text",
    "parse_lsn",
]


class PgoutputError(LakebaseSparkError, ValueError):
    """A logical replication message that does not follow the pgoutput format."""


class _Unchanged:
    """A TOAST value an UPDATE left unchanged: pgoutput sends no value for it."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = _Unchanged()
#: A column's value: Postgres' text of it, NULL, or an unchanged TOAST value.
Value = str | None | _Unchanged

_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    commit_time: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True)
class Origin:
    lsn: int
    name: str


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    #: Part of the replica identity (the key an UPDATE or DELETE sends as its old values).
    key: bool


@dataclass(frozen=True)
class Relation:
    """A table's shape as the stream sends it: before the first change of it in a session, and again
    after every change of its columns (a schema change)."""

    oid: int
    namespace: str
    name: str
    #: relreplident: d(efault: the primary key), n(othing), f(ull row), i(ndex).
    replica_identity: str
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class TypeMessage:
    oid: int
    namespace: str
    name: str


@dataclass(frozen=True)
class Insert:
    relation: int
    new: tuple[Value, ...]


@dataclass(frozen=True)
class Update:
    relation: int
    new: tuple[Value, ...]
    #: The old row: its key columns ('K': the key changed), the whole row ('O': REPLICA IDENTITY FULL),
    #: or None (neither: the key did not change and the identity is not FULL).
    old: tuple[Value, ...] | None
    old_kind: str | None


@dataclass(frozen=True)
class Delete:
    relation: int
    old: tuple[Value, ...]
    #: 'K' (the key columns; the others are NULL) or 'O' (the whole row).
    old_kind: str


@dataclass(frozen=True)
class Truncate:
    relations: tuple[int, ...]
    cascade: bool
    restart_identity: bool


@dataclass(frozen=True)
class LogicalMessage:
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin | Commit | Origin | Relation | TypeMessage | Insert | Update | Delete | Truncate | LogicalMessage
)


_INT16 = struct.Struct("!h")
_INT32 = struct.Struct("!i")
_UINT32 = struct.Struct("!I")
_INT64 = struct.Struct("!q")
_UINT64 = struct.Struct("!Q")
_NULL, _TEXT, _TOAST = ord("n"), ord("t"), ord("u")


class _Reader:
    """Reads a message's fields in order (``struct.unpack_from`` on the bytes: no copies but the values)."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.at = 0

    def _need(self, size: int) -> int:
        at = self.at
        if at + size > len(self.data):
            raise PgoutputError(f"a pgoutput message ends early ({len(self.data)} bytes, needed {at + size})")
        self.at = at + size
        return at

    def take(self, size: int) -> bytes:
        at = self._need(size)
        return self.data[at : at + size]

    def int8(self) -> int:
        return self.data[self._need(1)]

    def int16(self) -> int:
        return int(_INT16.unpack_from(self.data, self._need(2))[0])

    def int32(self) -> int:
        return int(_INT32.unpack_from(self.data, self._need(4))[0])

    def uint32(self) -> int:
        return int(_UINT32.unpack_from(self.data, self._need(4))[0])

    def int64(self) -> int:
        return int(_INT64.unpack_from(self.data, self._need(8))[0])

    def uint64(self) -> int:
        return int(_UINT64.unpack_from(self.data, self._need(8))[0])

    def time(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self.int64())

    def string(self) -> str:
        end = self.data.find(b"\x00", self.at)
        if end < 0:
            raise PgoutputError("a pgoutput string has no terminating NUL")
        text = self.data[self.at : end].decode("utf-8")
        self.at = end + 1
        return text

    def tuple(self) -> tuple[Value, ...]:
        """A TupleData: the hot loop of a change batch, so it reads the bytes directly."""
        data, count = self.data, self.int16()
        at, size = self.at, len(self.data)
        values: list[Value] = []
        append = values.append
        try:
            for _ in range(count):
                kind = data[at]
                at += 1
                if kind == _TEXT:
                    length = _INT32.unpack_from(data, at)[0]
                    at += 4
                    if length < 0 or at + length > size:
                        raise IndexError
                    append(data[at : at + length].decode("utf-8"))
                    at += length
                elif kind == _NULL:
                    append(None)
                elif kind == _TOAST:
                    append(UNCHANGED)
                else:  # 'b' (binary) needs the binary option, which this decoder never asks for
                    raise PgoutputError(
                        f"unexpected tuple value kind {chr(kind)!r} (the stream is read as text)"
                    )
        except (IndexError, struct.error):
            raise PgoutputError(f"a pgoutput message ends early ({size} bytes, in a tuple)") from None
        self.at = at
        return tuple(values)

    def done(self, what: str) -> None:
        if self.at != len(self.data):
            raise PgoutputError(f"{len(self.data) - self.at} bytes left after a pgoutput {what} message")


def decode(data: bytes) -> Message:
    """One pgoutput message (protocol version 1)."""
    if not data:
        raise PgoutputError("an empty pgoutput message")
    r = _Reader(data)
    kind = chr(r.int8())
    message: Message
    if kind == "B":
        message = Begin(r.uint64(), r.time(), r.uint32())
    elif kind == "C":
        r.int8()  # flags, unused
        message = Commit(r.uint64(), r.uint64(), r.time())
    elif kind == "O":
        message = Origin(r.uint64(), r.string())
    elif kind == "R":
        oid, namespace, name, identity = r.uint32(), r.string(), r.string(), chr(r.int8())
        columns = []
        for _ in range(r.int16()):
            flags = r.int8()
            columns.append(Column(r.string(), r.uint32(), r.int32(), key=bool(flags & 1)))
        message = Relation(oid, namespace, name, identity, tuple(columns))
    elif kind == "Y":
        message = TypeMessage(r.uint32(), r.string(), r.string())
    elif kind == "I":
        relation = r.uint32()
        _expect(r, "N", "an insert")
        message = Insert(relation, r.tuple())
    elif kind == "U":
        relation = r.uint32()
        marker = chr(r.int8())
        old, old_kind = None, None
        if marker in ("K", "O"):
            old, old_kind = r.tuple(), marker
            marker = chr(r.int8())
        if marker != "N":
            raise PgoutputError(f"an update's new tuple is marked {marker!r}, not 'N'")
        message = Update(relation, r.tuple(), old, old_kind)
    elif kind == "D":
        relation = r.uint32()
        marker = chr(r.int8())
        if marker not in ("K", "O"):
            raise PgoutputError(f"a delete's old tuple is marked {marker!r}, not 'K' or 'O'")
        message = Delete(relation, r.tuple(), marker)
    elif kind == "T":
        count, options = r.int32(), r.int8()
        message = Truncate(tuple(r.uint32() for _ in range(count)), bool(options & 1), bool(options & 2))
    elif kind == "M":
        transactional, lsn, prefix = bool(r.int8() & 1), r.uint64(), r.string()
        message = LogicalMessage(transactional, lsn, prefix, r.take(r.int32()))
    else:
        raise PgoutputError(f"unknown pgoutput message kind {kind!r}")
    r.done(type(message).__name__)
    return message


def _expect(r: _Reader, marker: str, what: str) -> None:
    got = chr(r.int8())
    if got != marker:
        raise PgoutputError(f"{what}'s tuple is marked {got!r}, not {marker!r}")


def parse_lsn(text: str) -> int:
    """An LSN as Postgres writes it (``16/B374D848``) as a number."""
    high, sep, low = text.partition("/")
    if not sep:
        raise PgoutputError(f"not an LSN: {text!r}")
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise PgoutputError(f"not an LSN: {text!r}") from None


def lsn_text(lsn: int) -> str:
    """An LSN as Postgres writes it."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"
