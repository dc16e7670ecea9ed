"""Shard keys: the key types a range shard map supports, their Python values, JSON form and SQL literals.

The contract every other part relies on: for each key type, Python's ordering of coerced keys is the
order Postgres gives the literals :func:`sql_literal` writes. Integers, numerics, dates and timestamps
compare by value on both sides; ``timestamptz`` keys are normalised to UTC, so they compare as instants;
UUIDs compare by their 128-bit value, which is the byte order Postgres' ``uuid`` uses; text compares by
code point, which is UTF-8 byte order, which is Postgres' ``COLLATE "C"`` (see :data:`TEXT_ORDER_NOTE`).
"""

from __future__ import annotations

import datetime
import decimal
import operator
import re
import uuid
from typing import Any, Literal, TypeAlias, cast, get_args

from .errors import InvalidShardMapError, KeyTypeError

__all__ = [
    "KEY_TYPES",
    "TEXT_ORDER_NOTE",
    "Key",
    "KeyType",
    "check_key_type",
    "coerce_key",
    "key_from_json",
    "key_to_json",
    "quote_identifier",
    "quote_string",
    "range_predicate",
    "sql_literal",
]

KeyType = Literal[
    "smallint", "integer", "bigint", "numeric", "date", "timestamp", "timestamptz", "text", "uuid"
]
KEY_TYPES: tuple[KeyType, ...] = get_args(KeyType)

#: A coerced key: ``int`` (smallint/integer/bigint), ``Decimal`` (numeric), ``date``, naive ``datetime``
#: (timestamp), UTC ``datetime`` (timestamptz), ``str`` (text) or ``UUID``.
Key: TypeAlias = int | decimal.Decimal | datetime.date | datetime.datetime | str | uuid.UUID

TEXT_ORDER_NOTE = (
    "Text keys are ordered by Unicode code point, which is UTF-8 byte order: that is Postgres' "
    'COLLATE "C", and how Python and Spark compare strings too (a database default collation such as '
    'en_US orders differently, so every text predicate carries COLLATE "C").'
)

_INT_RANGES: dict[str, tuple[int, int]] = {
    "smallint": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "bigint": (-(2**63), 2**63 - 1),
}
_INT_TEXT = re.compile(r"[+-]?[0-9]{1,25}")
# Postgres numeric holds up to 131072 digits before the point and 16383 after it.
_NUMERIC_MAX_INT_DIGITS = 131072
_NUMERIC_MAX_SCALE = 16383
_NUMERIC_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_UTC = datetime.timezone.utc


def _fail(key_type: str, value: object, why: str) -> KeyTypeError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return KeyTypeError(f"{shown} ({type(value).__name__}) is not a valid {key_type} shard key: {why}")


def check_key_type(key_type: object) -> KeyType:
    """``key_type`` if it is one of :data:`KEY_TYPES`, else :class:`InvalidShardMapError`."""
    if key_type not in KEY_TYPES:
        raise InvalidShardMapError(
            f"unknown shard key type {key_type!r}: use one of {', '.join(KEY_TYPES)} "
            "(the Postgres type of the key column)"
        )
    return key_type  # narrowed by the membership test


def coerce_key(key_type: KeyType, value: object) -> Key:
    """Validate ``value`` as a key of ``key_type`` and convert it to the canonical Python value.

    Accepted: ``int`` (not ``bool``) or a decimal string for the integer types (range-checked);
    ``Decimal``, ``int``, ``float`` (by its shortest repr) or a string for ``numeric`` (finite, within
    Postgres' limits); a ``date`` or ISO string for ``date``; a naive ``datetime``, a ``date`` (midnight)
    or ISO string for ``timestamp``; an aware ``datetime`` or ISO string with an offset for
    ``timestamptz`` (converted to UTC); a ``str`` without NUL or lone surrogates for ``text``; a
    ``UUID`` or UUID string for ``uuid``. ``None`` is never a key: NULL keys belong to no range.
    """
    check_key_type(key_type)
    if value is None:
        raise _fail(key_type, value, "NULL is not a key (rows with a NULL key belong to no range)")
    if key_type in _INT_RANGES:
        return _coerce_int(key_type, value)
    if key_type == "numeric":
        return _coerce_numeric(value)
    if key_type == "date":
        return _coerce_date(value)
    if key_type == "timestamp":
        return _coerce_timestamp(value)
    if key_type == "timestamptz":
        return _coerce_timestamptz(value)
    if key_type == "text":
        return _coerce_text(value)
    return _coerce_uuid(value)


def _coerce_int(key_type: KeyType, value: object) -> int:
    if isinstance(value, bool):
        raise _fail(key_type, value, "booleans are not integers here; pass int(value) if you mean 0/1")
    if isinstance(value, str):
        if not _INT_TEXT.fullmatch(value):
            raise _fail(key_type, value, "expected an integer such as 42 or '-7'")
        number = int(value)
    elif isinstance(value, decimal.Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise _fail(key_type, value, "expected a whole number")
        number = int(value)
    else:
        try:
            number = operator.index(cast(Any, value))  # int and integer-like types (numpy.int64), never float
        except TypeError:
            raise _fail(
                key_type, value, "expected an int (floats are not exact; convert explicitly)"
            ) from None
    low, high = _INT_RANGES[key_type]
    if not low <= number <= high:
        raise _fail(key_type, value, f"out of range: {key_type} holds {low} .. {high}")
    return number


def _coerce_numeric(value: object) -> decimal.Decimal:
    if isinstance(value, bool):
        raise _fail("numeric", value, "booleans are not numbers here")
    if isinstance(value, decimal.Decimal):
        number = value
    elif isinstance(value, int):
        number = decimal.Decimal(value)
    elif isinstance(value, float):
        # repr is the shortest string that round-trips: 0.1 -> Decimal('0.1'), not its binary expansion.
        number = decimal.Decimal(repr(value))
    elif isinstance(value, str):
        try:
            number = decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise _fail("numeric", value, "expected a decimal number such as '12.50'") from None
    else:
        raise _fail("numeric", value, "expected a Decimal, int or decimal string")
    if not number.is_finite():
        raise _fail("numeric", value, "NaN and infinities cannot bound a range")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite decimals have an int exponent
    if number.adjusted() >= _NUMERIC_MAX_INT_DIGITS or -exponent > _NUMERIC_MAX_SCALE:
        raise _fail(
            "numeric",
            value,
            f"Postgres numeric holds at most {_NUMERIC_MAX_INT_DIGITS} digits before the point and "
            f"{_NUMERIC_MAX_SCALE} after it",
        )
    return number


def _parse_datetime(key_type: str, value: str) -> datetime.datetime:
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"  # Python 3.10's fromisoformat does not read Z
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        raise _fail(key_type, value, "expected an ISO 8601 timestamp such as '2026-01-31 12:00:00'") from None


def _coerce_date(value: object) -> datetime.date:
    if isinstance(value, datetime.datetime):
        raise _fail("date", value, "a datetime is not a date; pass value.date() if you mean its day")
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value.strip())
        except ValueError:
            raise _fail("date", value, "expected an ISO 8601 date such as '2026-01-31'") from None
    raise _fail("date", value, "expected a datetime.date or an ISO 8601 string")


def _coerce_timestamp(value: object) -> datetime.datetime:
    if isinstance(value, str):
        value = _parse_datetime("timestamp", value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            raise _fail(
                "timestamp",
                value,
                "timestamp (without time zone) keys are naive; drop the zone "
                "(value.replace(tzinfo=None)) or use key type timestamptz",
            )
        return value.replace(tzinfo=None, fold=0)
    if isinstance(value, datetime.date):
        return datetime.datetime.combine(value, datetime.time())
    raise _fail("timestamp", value, "expected a naive datetime.datetime or an ISO 8601 string")


def _coerce_timestamptz(value: object) -> datetime.datetime:
    if isinstance(value, str):
        value = _parse_datetime("timestamptz", value)
    if not isinstance(value, datetime.datetime):
        raise _fail("timestamptz", value, "expected a datetime.datetime with a time zone, or an ISO string")
    if value.tzinfo is None or value.utcoffset() is None:
        raise _fail(
            "timestamptz",
            value,
            "a naive datetime is ambiguous as a timestamptz key; attach a zone, e.g. "
            "value.replace(tzinfo=datetime.timezone.utc)",
        )
    try:
        return value.astimezone(_UTC)
    except OverflowError:
        raise _fail("timestamptz", value, "out of range once converted to UTC") from None


def _coerce_text(value: object) -> str:
    if not isinstance(value, str):
        raise _fail("text", value, "expected a str")
    text = str.__str__(value)  # a plain str, whatever subclass came in
    if "\x00" in text:
        raise _fail("text", value, "Postgres text cannot hold NUL (\\x00) characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be stored, and would break code point = UTF-8 byte order.
        raise _fail("text", value, "it holds a lone surrogate, which is not valid Unicode text") from None
    return text


def _coerce_uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            raise _fail(
                "uuid", value, "expected a UUID such as '123e4567-e89b-12d3-a456-426614174000'"
            ) from None
    raise _fail("uuid", value, "expected a uuid.UUID or a UUID string")


def key_to_json(key_type: KeyType, key: Key) -> int | str:
    """The lossless JSON form of a key: integers as numbers, everything else as a string."""
    value = coerce_key(key_type, key)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime.date):  # date, timestamp and timestamptz
        return value.isoformat()
    return str(value)  # Decimal keeps its exact digits and scale; text as is; UUID canonical


def key_from_json(key_type: KeyType, value: int | str) -> Key:
    """The key whose JSON form is ``value`` (inverse of :func:`key_to_json`)."""
    return coerce_key(key_type, value)


def sql_literal(key_type: KeyType, key: Key) -> str:
    """A Postgres literal for ``key``, safe to paste into a predicate, typed so it compares in key order.

    Integers are plain digits; numerics ``'123.45'::numeric``; dates and timestamps
    ``'<ISO>'::date|timestamp|timestamptz``; text a quoted string with ``COLLATE "C"``; UUIDs
    ``'<uuid>'::uuid``. The key is re-validated first, so nothing unvalidated is pasted.
    """
    value = coerce_key(key_type, key)
    if key_type in _INT_RANGES:
        return str(value)
    if key_type == "numeric":
        assert isinstance(value, decimal.Decimal)
        digits = format(value, "f")  # positional: Postgres limits exponents in numeric input
        if not _NUMERIC_TEXT.fullmatch(digits):
            raise _fail("numeric", value, "cannot be written as a plain decimal literal")
        return f"'{digits}'::numeric"
    if key_type == "date":
        assert isinstance(value, datetime.date)
        return f"'{value.isoformat()}'::date"
    if key_type in ("timestamp", "timestamptz"):
        assert isinstance(value, datetime.datetime)
        return f"'{value.isoformat(sep=' ')}'::{key_type}"
    if key_type == "text":
        assert isinstance(value, str)
        return f'{quote_string(value)} COLLATE "C"'
    return f"'{value}'::uuid"


def quote_string(text: str) -> str:
    """A string constant that means ``text`` whatever ``standard_conforming_strings`` is (as libpq's
    PQescapeLiteral does): with a backslash, an ``E''`` string with backslashes doubled."""
    quoted = text.replace("'", "''")
    if "\\" in text:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def quote_identifier(name: str) -> str:
    """``name`` as a quoted Postgres identifier (case-sensitive: unquoted names were folded to lower case)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidShardMapError(
            f"column or identifier {name!r} must be a non-empty string without NUL characters"
        )
    return '"' + name.replace('"', '""') + '"'


def range_predicate(key_type: KeyType, column: str, low: Key | None, high: Key | None) -> str:
    """The SQL predicate ``column >= low AND column < high`` (either bound may be ``None``: unbounded).

    ``column`` is quoted as an identifier (so it is case-sensitive). A predicate never matches NULL
    keys; with both bounds unbounded it is ``column IS NOT NULL``.
    """
    col = quote_identifier(column)
    parts = []
    if low is not None:
        parts.append(f"{col} >= {sql_literal(key_type, low)}")
    if high is not None:
        parts.append(f"{col} < {sql_literal(key_type, high)}")
    return " AND ".join(parts) if parts else f"{col} IS NOT NULL"


def key_lt(a: Key, b: Key) -> bool:
    """``a < b`` for two keys of one map: they share one Python type (:func:`coerce_key`)."""
    return bool(cast(Any, a) < b)
