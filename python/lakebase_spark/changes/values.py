"""Postgres' text of a column's values (as pgoutput sends them: the types' output functions, DateStyle
ISO, TimeZone UTC) into an Arrow array of the type the batch reader gives the column: Arrow's vectorised
cast where it parses the text exactly, value by value in Python where it does not (NaN numerics,
decimals to round, BC dates, years past 9999, infinities).
"""

from __future__ import annotations

import decimal
import re
from typing import TYPE_CHECKING, Any

from .errors import ChangeStreamError

if TYPE_CHECKING:
    import pyarrow as pa

    from .shapes import ColumnShape

__all__ = ["ARROW_CASTS", "arrow_type", "parsed_column", "typed_column"]

#: Spark types (and decimals) whose Postgres text Arrow's own cast parses exactly as the Python path
#: would (tests/changes/test_batches.py: every type both ways): a column of a batch with a value the
#: cast refuses (NaN numerics, decimals to round, BC dates, years past 9999, infinities) goes the
#: Python way, and a batch of ordinary values goes ten times faster.
ARROW_CASTS = {"smallint", "int", "bigint", "float", "double", "date", "timestamp", "timestamp_ntz"}


def typed_column(column: ColumnShape, texts: pa.Array, load: Any) -> pa.Array:
    """One column of a batch, from Postgres' text of its values (an Arrow string array)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = arrow_type(column.spark_type)
    if column.as_text or kind == pa.string():
        return texts
    if column.spark_type == "boolean":
        return pc.equal(texts, "t")
    if column.spark_type in ARROW_CASTS or pa.types.is_decimal(kind):
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
