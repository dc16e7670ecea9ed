"""What the JVM's binary-COPY reader selects and decodes for each column of a read, or why it cannot.

The schema is the one Spark's JDBC reader infers for the table (``customSchema`` included), so both
readers give the same Spark types; this module adds, per column, the Postgres type the reader decodes
from binary COPY. Columns Spark reads as strings whose Postgres type has no binary decoder here (uuid,
json, inet, interval, enums, ...) are selected as their text output (``format('%s', col)``), which is what
pgjdbc's ``getString`` returns. Anything else (arrays, geometric types, ``time``, ``TimestampNTZ``)
leaves the whole read to the JDBC reader: never a wrong value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..names import TableName, quote_identifier

if TYPE_CHECKING:
    from pyspark.sql.types import StructType

__all__ = [
    "BINARY_TYPES",
    "COPY_READ_SOURCE",
    "CopyColumns",
    "copy_columns",
    "copy_read_options",
]

#: The jar's DSv2 source (a class name: a short name would clash with ``format("lakebase")``).
COPY_READ_SOURCE = "io.lakebase.spark.CopyReadSource"
READ_TABLE = "lakebase.read.table"
READ_COLUMNS = "lakebase.read.columns"
READ_PREDICATES = "lakebase.read.predicates"

#: Postgres type OID -> the decoder the JVM has for it (PgBinaryType, compared by tests/test_contract.py),
#: and the Spark types (``typeName()``) it fills as the JDBC reader would.
BINARY_TYPES: dict[int, tuple[str, tuple[str, ...]]] = {
    21: ("int2", ("short", "integer", "long")),
    23: ("int4", ("integer", "long")),
    20: ("int8", ("long",)),
    700: ("float4", ("float",)),
    701: ("float8", ("double",)),
    16: ("bool", ("boolean",)),
    1700: ("numeric", ("decimal",)),
    25: ("text", ("string",)),
    1043: ("text", ("string",)),  # varchar
    1042: ("text", ("string",)),  # bpchar: padded, as getString gives it
    19: ("text", ("string",)),  # name
    17: ("bytea", ("binary",)),
    1082: ("date", ("date",)),
    1114: ("timestamp", ("timestamp",)),
    1184: ("timestamptz", ("timestamp",)),
}
#: Spark JDBC options the COPY reader does not honour: a read that sets one goes through the JDBC reader.
_JDBC_ONLY = frozenset(
    {
        "sessioninitstatement",
        "querytimeout",
        "prefertimestampntz",
        "pushdownpredicate",
        "query",
        "preparequery",
        "hint",
    }
)


@dataclass(frozen=True)
class CopyColumns:
    """Each column's ``{"name", "sql", "type"}``, in the schema's order (None: ``unsupported`` says why)."""

    columns: list[dict[str, str]] | None
    unsupported: str | None = None


def copy_columns(conn: Any, table: TableName, schema: StructType, options: Mapping[str, str]) -> CopyColumns:
    """Plan the COPY reader's columns for ``schema`` (Spark's JDBC inference of ``table``)."""
    jdbc_only = sorted(k for k in options if k.lower() in _JDBC_ONLY)
    if jdbc_only:
        return CopyColumns(None, f"option(s) {', '.join(jdbc_only)} are the JDBC reader's")
    with conn.cursor() as cur:
        cur.execute(f"SELECT * FROM {table.quoted()} LIMIT 0")  # noqa: S608 - a quoted name
        oids = {d.name: d.type_code for d in cur.description or ()}
    planned = []
    for field in schema.fields:
        oid = oids.get(field.name)
        spark_type = field.dataType.typeName()
        if oid is None:
            return CopyColumns(None, f"column {field.name!r} of the schema is not in the table")
        decoder, fills = BINARY_TYPES.get(oid, (None, ()))
        quoted = quote_identifier(field.name)
        if decoder is not None and spark_type in fills:
            planned.append({"name": field.name, "sql": quoted, "type": decoder})
        elif spark_type == "string":
            # The type's output function, as the text protocol sends it: not ::text, which for inet adds
            # the netmask and for boolean spells 'true'. format('%s', NULL) is '', hence the CASE.
            text = f"CASE WHEN {quoted} IS NULL THEN NULL ELSE format('%s', {quoted}) END"
            planned.append({"name": field.name, "sql": text, "type": "text"})
        else:
            return CopyColumns(
                None, f"column {field.name!r} (type oid {oid}) read as {spark_type} has no binary decoder"
            )
    return CopyColumns(planned)


def copy_read_options(
    table: TableName, columns: Sequence[Mapping[str, str]], predicates: Sequence[str]
) -> dict[str, str]:
    """The ``lakebase.read.*`` options of the COPY source."""
    return {
        READ_TABLE: table.quoted(),
        READ_COLUMNS: json.dumps(list(columns)),
        READ_PREDICATES: json.dumps(list(predicates)),
    }
