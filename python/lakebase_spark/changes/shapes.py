"""A change stream's table as the stream sees it: its columns (names, types as Relation messages send
them, and as the batch reader types them), the metadata columns every change row has, and the checks
that keep the stream's schema: a Relation message or a checkpoint that no longer matches stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..names import TableName
from .errors import SchemaChangedError

if TYPE_CHECKING:
    from ..postgres import pgoutput as pg

__all__ = ["METADATA_COLUMNS", "ColumnShape", "TableShape"]

#: The columns every change row has after the table's own.
METADATA_COLUMNS = (
    ("_change_type", "string"),
    ("_lsn", "bigint"),
    ("_commit_timestamp", "timestamp"),
    ("_xid", "bigint"),
    ("_missing_columns", "array<string>"),
)


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
