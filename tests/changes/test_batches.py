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

    from lakebase_spark.changes.values import ARROW_CASTS, arrow_type, parsed_column, typed_column
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
            fast, slow = (
                typed_column(column, pa.array(values, pa.string()), load),
                parsed_column(column, values, load),
            )
            assert fast.type == slow.type, column
            assert comparable(fast) == comparable(slow), (column.name, rows)
            kind = arrow_type(column.spark_type)
            if rows != "TRUE" and (column.spark_type in ARROW_CASTS or pa.types.is_decimal(kind)):
                pa.array(values, pa.string()).cast(kind)  # ordinary values take the vectorised path


def comparable(array) -> str:
    """The values, NaN equal to NaN, dates and timestamps as their numbers (Python's hold no BC years)."""
    import pyarrow as pa

    if pa.types.is_date32(array.type):
        array = array.view(pa.int32())
    elif pa.types.is_timestamp(array.type):
        array = array.view(pa.int64())
    return repr(array.to_pylist())


def _shape_and_loaders(admin, table: str):
    from lakebase_spark.datasource.change_stream import table_shape
    from lakebase_spark.names import TableName

    _, shape = table_shape(admin, types.SimpleNamespace(table=TableName.parse(table)))
    loaders = [
        admin.adapters.get_loader(c.load_oid, Format.TEXT)(c.load_oid, admin).load for c in shape.columns
    ]
    return shape, loaders


def one_by_one(messages, shape, start: int, end: int) -> list[tuple]:
    """The rows a change batch must hold, from the message-by-message decoder (tests/postgres checks it
    against the server): the oracle of the columnar one."""
    from lakebase_spark.postgres import pgoutput as pg

    names = [c.name for c in shape.columns]
    rows: list[tuple] = []
    relation = begin = None
    for _, data in messages:
        message = pg.decode(data)
        if isinstance(message, pg.Begin):
            begin = message
        elif isinstance(message, pg.Commit):
            begin = None
        elif isinstance(message, pg.Relation):
            if f"{message.namespace}.{message.name}" == str(shape.table).replace('"', ""):
                relation = message
        elif isinstance(message, pg.Insert | pg.Update | pg.Delete):
            if relation is None or message.relation != relation.oid or not start <= begin.final_lsn < end:
                continue
            keys = {i for i, c in enumerate(relation.columns) if c.key}

            def row(kind, values, key_only=False, begin=begin, keys=keys):
                gone = [(key_only and i not in keys) or v is pg.UNCHANGED for i, v in enumerate(values)]
                kept = tuple(None if g else v for g, v in zip(gone, values, strict=True))
                missing = [n for n, g in zip(names, gone, strict=True) if g] or None
                return (*kept, kind, begin.final_lsn, begin.xid, missing)

            if isinstance(message, pg.Insert):
                rows.append(row("insert", message.new))
            elif isinstance(message, pg.Delete):
                rows.append(row("delete", message.old, key_only=message.old_kind == "K"))
            elif message.old_kind == "O":
                new = tuple(
                    o if n is pg.UNCHANGED else n for n, o in zip(message.new, message.old, strict=True)
                )
                rows += [row("update_preimage", message.old), row("update_postimage", new)]
            else:
                rows.append(row("update_preimage", message.old or message.new, key_only=True))
                rows.append(row("update_postimage", message.new))
    return rows


@pytest.mark.parametrize("identity", ["DEFAULT", "FULL"])
def test_a_batch_holds_what_the_messages_say_one_by_one(emulator, admin, identity) -> None:
    """Real server output of every kind of row change (keys changed or not, unchanged TOAST values,
    deletes, another table's changes between), read whole and for a window of transactions."""
    import uuid

    from lakebase_spark.changes.batches import change_batches
    from lakebase_spark.postgres.pgoutput import parse_lsn
    from lakebase_spark.postgres.slots import peek

    name = f"cb_{identity.lower()}_{uuid.uuid4().hex[:6]}"
    admin.execute("DROP TABLE IF EXISTS public.cb_rows, public.cb_other")
    admin.execute("CREATE TABLE public.cb_rows (id int PRIMARY KEY, n int, note text, big text)")
    admin.execute(f"ALTER TABLE public.cb_rows REPLICA IDENTITY {identity}")
    admin.execute("CREATE TABLE public.cb_other (id int PRIMARY KEY, note text)")
    admin.execute(f"CREATE PUBLICATION {name} FOR TABLE public.cb_rows, public.cb_other")
    admin.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
    big = "".join(uuid.uuid4().hex for _ in range(400))  # TOASTed out of line
    lsns = []
    try:
        for statements in (
            [
                "INSERT INTO public.cb_rows SELECT g, g, "
                "CASE WHEN mod(g, 3) = 0 THEN NULL ELSE 'é ' || g END, "
                f"CASE WHEN mod(g, 5) = 0 THEN '{big}' END FROM generate_series(1, 2000) g",
                "INSERT INTO public.cb_other VALUES (1, 'other')",
            ],
            [
                "UPDATE public.cb_rows SET n = n + 1 WHERE mod(id, 2) = 0",  # big unchanged where TOASTed
                "UPDATE public.cb_other SET note = 'x'",
                "UPDATE public.cb_rows SET id = id + 10000 WHERE mod(id, 7) = 0",  # keys changed
            ],
            [
                "DELETE FROM public.cb_rows WHERE mod(id, 11) = 0",
                "INSERT INTO public.cb_rows VALUES (-1, NULL, '', '')",
            ],
        ):
            with admin.transaction():
                for sql in statements:
                    admin.execute(sql)
            lsns.append(parse_lsn(admin.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()[0]))
        admin.execute("SELECT pg_switch_wal()")  # flushed (the emulator commits asynchronously)
        messages = peek(admin, name, name, None, None)
        shape, loaders = _shape_and_loaders(admin, "public.cb_rows")
        for start, end in ((0, 1 << 62), (lsns[0], lsns[1]), (lsns[1], 1 << 62)):  # all; a window; the end
            batches = list(change_batches(messages, shape, loaders, start, end))
            got = [
                (
                    *(None if d[c] is None else str(d[c]) for c in ("id", "n", "note", "big")),
                    *(d[c] for c in ("_change_type", "_lsn", "_xid", "_missing_columns")),
                )
                for b in batches
                for d in b.to_pylist()
            ]
            want = one_by_one(messages, shape, start, end)
            assert len(want) > 100
            assert got == want, (start, end)
        kinds = {r[4] for r in one_by_one(messages, shape, 0, 1 << 62)}
        assert kinds == {"insert", "update_preimage", "update_postimage", "delete"}
        assert any(r[7] == ["big"] for r in one_by_one(messages, shape, 0, 1 << 62)) == (
            identity == "DEFAULT"
        )
    finally:
        admin.execute("SELECT pg_drop_replication_slot(%s)", (name,))
        admin.execute(f"DROP PUBLICATION {name}")


def test_malformed_row_messages_are_refused_not_misread() -> None:
    """The columnar decoder checks what the message-by-message one does: lengths, kinds, counts, UTF-8."""
    import struct

    from lakebase_spark.changes.batches import change_batches
    from lakebase_spark.changes.shapes import ColumnShape, TableShape
    from lakebase_spark.names import TableName
    from lakebase_spark.postgres.pgoutput import PgoutputError

    shape = TableShape(
        TableName.parse("public.t"),
        (ColumnShape("id", 23, 23, "int", False), ColumnShape("note", 25, 25, "string", False)),
    )
    relation = (
        b"R" + struct.pack("!I", 7) + b"public\0t\0d" + struct.pack("!h", 2)
        + b"\x01id\0" + struct.pack("!Ii", 23, -1) + b"\x00note\0" + struct.pack("!Ii", 25, -1)
    )  # fmt: skip
    begin = b"B" + struct.pack("!QqI", 100, 0, 9)
    commit = b"C\0" + struct.pack("!QQq", 100, 108, 0)

    def insert(*values: bytes, count: int | None = None) -> bytes:
        return b"I" + struct.pack("!I", 7) + b"N" + struct.pack("!h", count or len(values)) + b"".join(values)

    def text(value: bytes) -> bytes:
        return b"t" + struct.pack("!i", len(value)) + value

    def rows(*inserts: bytes):
        messages = [(0, m) for m in (begin, relation, *inserts, commit)]
        return [r for b in change_batches(messages, shape, [int, str], 0, 1000) for r in b.to_pylist()]

    good = insert(text(b"1"), text("é".encode()))
    assert [(r["id"], r["note"], r["_change_type"]) for r in rows(good, insert(text(b"2"), b"n"))] == [
        (1, "é", "insert"),
        (2, None, "insert"),
    ]
    for bad, says in (
        (good[:-1], "ends early"),
        (good + b"x", "bytes left"),
        (insert(text(b"1"), b"b" + struct.pack("!i", 1) + b"x"), "unexpected tuple value kind 'b'"),
        (insert(text(b"1"), count=1), "1 columns"),
        (insert(text(b"1"), b"t" + struct.pack("!i", -1)), "negative length|ends early"),
        (insert(text(b"1"), b"t" + struct.pack("!i", 1_000_000) + b"abc"), "ends early"),
        (insert(text(b"1"), text(b"\xff\xfe")), "not UTF-8"),
        (b"I" + struct.pack("!I", 7) + b"X" + good[6:], "not marked 'N'"),
        (b"I\0\0", "ends early"),
    ):
        with pytest.raises(PgoutputError, match=says):
            rows(good, bad)
