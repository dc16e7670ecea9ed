"""``format("lakebase")``: the data source Spark sees, and its registration."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyspark.sql.datasource import DataSource

from ..changes.shapes import METADATA_COLUMNS, TableShape
from ..names import TableName, quote_identifier
from ..writing.plans import Database, WritePlan, WriteRequest, plan_write
from ..writing.tables import TableInfo
from .change_stream import ChangeStreamReader, StreamSettings, stream_settings, table_shape
from .columns import ReadColumn
from .logins import Login
from .options import FORMAT, SourceOptions, SourceOptionsError, check_known
from .reader import FilteringReader, LakebaseReader, describe_columns
from .streams import LakebaseStreamWriter
from .writer import LakebaseWriter, LoginConnector
from .xmin_stream import XminStreamReader

if TYPE_CHECKING:
    import psycopg
    from pyspark.sql.types import DataType, StructType


__all__ = ["LakebaseDataSource"]


class LakebaseDataSource(DataSource):
    """Reads and writes Lakebase tables from Python workers alone: no jar, no JDBC driver."""

    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> str:
        if _is_change_stream(self.options):
            check_stream_api()
            check_known(self.options, "stream read")
            options, columns, shape, settings = self._change_stream()
            # The stream's reader runs in a Python process of its own that does not see the session's
            # files; Spark pickles this object after schema() for it, so the secret read here travels in
            # it (never in an option, plan text or log).
            login = options.require_login().read_here()
            self._stream = (dataclasses.replace(options, login=login), columns, shape, settings)
            return shape.spark_schema()
        check_known(self.options, "read")
        columns = describe_columns(SourceOptions.parse(self.options))
        return ", ".join(f"`{c.name.replace('`', '``')}` {c.spark_type}" for c in columns)

    def streamReader(self, schema: StructType) -> ChangeStreamReader | XminStreamReader:
        """``spark.readStream.format("lakebase")``: a table's changes, from a slot
        (``datasource/change_stream.py``) or, with ``mode=xmin``, by transaction id (``xmin_stream.py``)."""
        check_stream_api()
        stream = getattr(self, "_stream", None)
        if stream is None:
            if not _is_change_stream(self.options):
                stream_settings(SourceOptions.parse(self.options))  # names what a stream needs
            raise SourceOptionsError(
                "a change stream takes its table's own schema: leave out .schema(...) on readStream"
            )
        options, columns, shape, settings = stream
        metadata = {name for name, _ in METADATA_COLUMNS}
        if [name for name in schema.fieldNames() if name not in metadata] != [c.name for c in shape.columns]:
            raise SourceOptionsError("a change stream reads all its table's columns: .schema() cannot narrow")
        kind = XminStreamReader if settings.mode == "xmin" else ChangeStreamReader
        return kind(options, columns, shape, settings)

    def _change_stream(self) -> tuple[SourceOptions, list[ReadColumn], TableShape, StreamSettings]:
        options = SourceOptions.parse(self.options)
        settings = stream_settings(options)
        with options.require_login().psycopg(autocommit=True) as conn:
            columns, shape = table_shape(conn, options)
        return options, columns, shape, settings

    def reader(self, schema: StructType) -> LakebaseReader:
        check_known(self.options, "read")
        options = SourceOptions.parse(self.options)
        kind = FilteringReader if options.flag("pushFilters") else LakebaseReader
        return kind(options, describe_columns(options), schema.fieldNames())

    def writer(self, schema: StructType, overwrite: bool) -> LakebaseWriter:
        check_known(self.options, "write")
        options, table, login = _write_options(self.options)
        upsert_key = options.get("upsertKey")
        mode = "overwrite" if overwrite else "upsert" if upsert_key else "append"
        if overwrite and upsert_key:
            raise SourceOptionsError("option upsertKey goes with mode append (the upsert), not overwrite")
        request = WriteRequest.of(
            schema.fieldNames(),
            table,
            mode=mode,
            key=_names(upsert_key),
            order_by=_names(options.get("orderBy")),
            write_id=options.get("writeId"),
            atomic=options.flag("atomic"),
        )
        return LakebaseWriter(_plan(request, schema, login), login)

    def streamWriter(self, schema: StructType, overwrite: bool) -> LakebaseStreamWriter:
        options, table, login = _write_options(self.options)
        if overwrite:
            raise SourceOptionsError(
                "writeStream.format('lakebase') appends each micro-batch's rows exactly once; "
                "for complete mode, write each batch with foreach_batch(..., mode='overwrite', jar_free=True)"
            )
        for name, instead in (
            ("upsertKey", "foreach_batch(..., mode='upsert', jar_free=True)"),
            ("writeId", "nothing: each micro-batch's id is the query's and the batch's"),
        ):
            if options.get(name):
                raise SourceOptionsError(f"a stream write takes no option {name}; use {instead}")
        check_known(self.options, "stream write")
        request = WriteRequest.of(schema.fieldNames(), table, mode="append")
        # A stream's tasks under Spark Connect do not see the session's files: the writer carries the
        # secret itself (inside the pickled writer, never in an option, plan text or log).
        login = login.read_here()
        return LakebaseStreamWriter(_plan(request, schema, login, begin=False), login)


def check_stream_api() -> None:
    """Change streams need Spark 4.2's stream reader (offsets given to latestOffset, read limits)."""
    import pyspark

    version = tuple(int(p) for p in pyspark.__version__.split(".")[:2] if p.isdigit())
    if version < (4, 2):
        raise SourceOptionsError(
            f"spark.readStream.format('lakebase') needs Spark 4.2 or later (its Python stream readers take "
            f"the start offset and read limits a change stream needs); this Spark is {pyspark.__version__}. "
            "Read the table in batches with spark.read.format('lakebase') or lakebase_spark.read"
        )


def _is_change_stream(options: Mapping[str, str]) -> bool:
    """A read is a change stream when it names its slot or its mode (Spark asks a stream's schema as
    it asks a batch read's, so the options tell them apart)."""
    return any(k.lower() in ("slotname", "mode") for k in options)


def _write_options(options: Mapping[str, str]) -> tuple[SourceOptions, TableName, Login]:
    parsed = SourceOptions.parse(options)
    if parsed.table is None:
        raise SourceOptionsError("a write needs option dbtable: the table to write into")
    return parsed, parsed.table, parsed.require_login()


def _plan(request: WriteRequest, schema: StructType, login: Login, *, begin: bool = True) -> WritePlan:
    """Check the write against the table (creating it if missing) before any row moves."""
    target = request.target
    return plan_write(
        request,
        schema,
        Database(LoginConnector(login)),
        lambda conn: _create_table(conn, target, schema),
        begin=begin,
    )


def _names(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _create_table(conn: psycopg.Connection[Any], target: TableName, schema: StructType) -> TableInfo:
    """Create the table with Spark's JDBC type mapping for Postgres (Spark 4), with no rows."""
    from ..errors import WriteError

    columns = ", ".join(
        f"{quote_identifier(f.name)} {_postgres_type(f.dataType)}{'' if f.nullable else ' NOT NULL'}"
        for f in schema.fields
    )
    conn.execute(f"CREATE TABLE {target.quoted()} ({columns})")
    info = TableInfo.load(conn, target)
    if info is None:
        raise WriteError(f"creating table {target} left no table behind")
    return info


def _postgres_type(data_type: DataType) -> str:
    from pyspark.sql import types as T

    if isinstance(data_type, T.ArrayType):
        return f"{_postgres_type(data_type.elementType)}[]"
    if isinstance(data_type, T.DecimalType):
        return f"NUMERIC({data_type.precision},{data_type.scale})"
    names = {
        T.BooleanType: "BOOLEAN",
        T.ByteType: "SMALLINT",
        T.ShortType: "SMALLINT",
        T.IntegerType: "INTEGER",
        T.LongType: "BIGINT",
        T.FloatType: "FLOAT4",
        T.DoubleType: "FLOAT8",
        T.StringType: "TEXT",
        T.BinaryType: "BYTEA",
        T.DateType: "DATE",
        T.TimestampType: "TIMESTAMP WITH TIME ZONE",
        T.TimestampNTZType: "TIMESTAMP",
    }
    for kind, name in names.items():
        if isinstance(data_type, kind):
            return name
    raise SourceOptionsError(
        f"Spark type {data_type.simpleString()} has no Postgres column type here: convert it"
    )
