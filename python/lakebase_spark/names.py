"""Table names by Postgres' rules, one parser for the whole package: writes, sharded reads and writes.

``orders`` is ``public.orders``; unquoted parts fold to lower case (``Orders`` is ``orders``), double
quotes keep a part exactly (``"Orders"``); a ``(schema, table)`` tuple is taken literally. Names are
quoted into SQL, never pasted, and anything Postgres would silently change (a part over 63 bytes) or
could not take (control characters) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import InvalidTableNameError

if TYPE_CHECKING:
    from psycopg import sql

__all__ = ["MAX_IDENTIFIER_BYTES", "TableLike", "TableName", "quote_identifier"]

#: Postgres keeps the first 63 bytes of an identifier and silently drops the rest.
MAX_IDENTIFIER_BYTES = 63
_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_PART = re.compile(r'"((?:[^"]|"")*)"|([^."]*)')


@dataclass(frozen=True)
class TableName:
    """A schema-qualified table name, parsed by Postgres' rules: unquoted parts fold to lower case."""

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str | tuple[str, str] | TableName) -> TableName:
        """``"orders"``, ``"shop.orders"``, ``'"Shop"."Orders"'`` or an exact ``(schema, table)`` tuple."""
        if isinstance(text, TableName):
            return text
        if isinstance(text, tuple):
            if len(text) != 2:
                raise InvalidTableNameError(f"a table tuple must be (schema, table), got {text!r}")
            parts = [_check_part(p, text) for p in text]
            return cls(parts[0], parts[1])
        if not isinstance(text, str) or not text.strip():
            raise InvalidTableNameError(f"table must be a name such as 'public.orders', got {text!r}")
        parts = _split(text.strip())
        if len(parts) == 1:
            parts = ["public", *parts]
        if len(parts) != 2:
            raise InvalidTableNameError(
                f"table {text!r} must be 'table' or 'schema.table' (quote a name that contains a dot)"
            )
        return cls(parts[0], parts[1])

    def quoted(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    def sql(self) -> sql.Identifier:
        """The name for psycopg's SQL composition."""
        from psycopg import sql

        return sql.Identifier(self.schema, self.name)

    def sibling(self, name: str) -> TableName:
        """Another table in the same schema (staging tables, the commit log)."""
        return TableName(self.schema, name)

    def __str__(self) -> str:
        return self.quoted()


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _split(text: str) -> list[str]:
    parts: list[str] = []
    position = 0
    while True:
        m = _PART.match(text, position)
        assert m is not None  # the pattern matches the empty string
        quoted, bare = m.group(1), m.group(2)
        if quoted is None and text.startswith('"', position):
            raise InvalidTableNameError(f"table name {text!r} does not parse: a double quote is not closed")
        if quoted is not None:
            part = quoted.replace('""', '"')
        else:
            if not _UNQUOTED.fullmatch(bare):
                raise InvalidTableNameError(
                    f"table name {text!r} is refused: {bare!r} is not a plain identifier (letters, digits, "
                    "_ and $, not starting with a digit). Double-quote a name that needs other characters, "
                    'e.g. \'"My Schema"."Orders"\''
                )
            part = bare.lower()
        parts.append(_check_part(part, text))
        position = m.end()
        if position == len(text):
            return parts
        if text[position] != ".":
            raise InvalidTableNameError(f"table name {text!r} does not parse: unexpected {text[position]!r}")
        position += 1


def _check_part(part: object, whole: object) -> str:
    if not isinstance(part, str) or not part:
        raise InvalidTableNameError(f"table name {whole!r} has an empty part")
    if any(ord(c) < 32 or ord(c) == 127 for c in part):
        raise InvalidTableNameError(f"table name {whole!r} contains a control character; refused")
    if len(part.encode()) > MAX_IDENTIFIER_BYTES:
        raise InvalidTableNameError(
            f"table name part {part!r} is longer than Postgres' {MAX_IDENTIFIER_BYTES} bytes, "
            "which Postgres would silently truncate"
        )
    return part


#: What the API takes as a table: a name by Postgres' rules, an exact ``(schema, table)`` tuple, or parsed.
TableLike = str | tuple[str, str] | TableName
