"""A change batch's columns: Arrow's vectorised cast of Postgres' text and the value-by-value Python path
give the same arrays for every type the cast takes, edge values included (the text comes from a real
server, as pgoutput sends it: the types' output functions, DateStyle ISO, TimeZone UTC)."""

from __future__ import annotations

import types

import pytest
from psycopg.pq import Format

pytestmark = pytest.mark.postgres

COLUMNS = """
    i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, n numeric(12,2), nn numeric,
    b boolean, d date, ts timestamp, tz timestamptz, edge text DEFAULT 'yes'
"""
ORDINARY = """
    SELECT g::int2, g * 1000, g * 10000000000, g / 7.0, g / 3.0, g * 1.25, g / 8.0, g % 2 = 0,
           date '2024-01-01' + g, timestamp '2024-01-01 00:00:00.123456' + g * interval '1.5 second',
           timestamptz '2024-01-01 00:00:00+05:30' + g * interval '1 minute', 'no'
    FROM generate_series(-50, 50) g
"""
EDGES = [
    "(-32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', -9999999999.99, 'NaN', true, "
    "'0044-03-15 BC', '0044-03-15 12:00:00.5 BC', '0001-01-01 00:00:00+00 BC')",
    "(32767, 2147483647, 9223372036854775807, 'Infinity', 'Infinity', 9999999999.99, "
    "0.333333333333333333333333333, false, 'infinity', 'infinity', 'infinity')",
    "(0, 0, 0, '-Infinity', '-Infinity', 0, 12345678901234567890.5, NULL, '-infinity', '-infinity', "
    "'-infinity')",
    "(NULL, NULL, NULL, 3.4028235e+38, 1.7976931348623157e+308, NULL, '-0.000000000000000000005', NULL, "
    "'10000-01-01', '10000-01-01 00:00:00', '10000-01-01 00:00:00+00')",
    "(1, 1, 1, 1.17549435e-38, 4.9e-324, -0.01, 1e-18, true, '1970-01-01', '1970-01-01 00:00:00', "
    "'1969-12-31 23:59:59.999999+00')",
]


def test_arrows_cast_and_the_python_path_agree_on_every_type(emulator, admin) -> None:
    import pyarrow as pa

    from lakebase_spark.changes.batches import _CASTS, _column, arrow_type, parsed_column
    from lakebase_spark.datasource.change_stream import table_shape
    from lakebase_spark.names import TableName

    admin.execute("DROP TABLE IF EXISTS public.cb_types")
    admin.execute(f"CREATE TABLE public.cb_types ({COLUMNS})")
    admin.execute(f"INSERT INTO public.cb_types {ORDINARY}")
    admin.execute(
        f"INSERT INTO public.cb_types (i2, i4, i8, f4, f8, n, nn, b, d, ts, tz) VALUES {', '.join(EDGES)}"
    )
    _, shape = table_shape(admin, types.SimpleNamespace(table=TableName.parse("public.cb_types")))
    admin.execute("SET DateStyle = ISO")  # the text pgoutput sends a change stream
    admin.execute("SET TimeZone = 'UTC'")
    for rows in ("edge = 'no'", "TRUE"):  # ordinary values; then with the edge ones
        for column in shape.columns:
            load = admin.adapters.get_loader(column.load_oid, Format.TEXT)(column.load_oid, admin).load
            # the type's output function, as pgoutput (a boolean's cast to text says 'true', its output 't')
            text = (
                f"boolout({column.name})::text" if column.spark_type == "boolean" else f"{column.name}::text"
            )
            values = [r[0] for r in admin.execute(f"SELECT {text} FROM public.cb_types WHERE {rows}")]
            fast, slow = _column(column, values, load), parsed_column(column, values, load)
            assert fast.type == slow.type, column
            assert comparable(fast) == comparable(slow), (column.name, rows)
            kind = arrow_type(column.spark_type)
            if rows != "TRUE" and (column.spark_type in _CASTS or pa.types.is_decimal(kind)):
                pa.array(values, pa.string()).cast(kind)  # ordinary values take the vectorised path


def comparable(array) -> str:
    """The values, NaN equal to NaN, dates and timestamps as their numbers (Python's hold no BC years)."""
    import pyarrow as pa

    if pa.types.is_date32(array.type):
        array = array.view(pa.int32())
    elif pa.types.is_timestamp(array.type):
        array = array.view(pa.int64())
    return repr(array.to_pylist())
