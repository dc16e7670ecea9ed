"""Differential writes: the same DataFrame columns written by Spark's own JDBC writer and by
``lakebase_spark.write`` into tables of the same column types, then compared value for value.

Each case is one column (a Spark type, its values, a Postgres column type). Writing each case on its
own would take a Spark job per case and writer; instead the cases are written together into one wide
table, and a failing write is narrowed down: a case the error names (``column "c12"``, or
``parameter $13``) is taken out, and an error that names none splits the cases in halves.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql


@dataclass(frozen=True)
class Case:
    """One column: a Spark type, values of it (Python, as createDataFrame takes them), a column type."""

    spark_type: str
    values: tuple[Any, ...]
    column: str
    #: Where the values came from (a table of Spark's PostgreSQL suite, or the cross-type matrix).
    source: str = "matrix"
    #: For values Spark reads as strings of another type: what the column holds when parsed (reference).
    reference: tuple[Any, ...] | None = None
    #: Spark cannot write these at all (pgjdbc has no array of them): compare with values bound by psycopg.
    bound: bool = False

    def label(self) -> str:
        return f"{self.spark_type} -> {self.column} [{self.source}]"


@dataclass
class Outcome:
    """What one writer did with each case: the table and column holding its rows, or its error."""

    written: dict[int, tuple[str, str]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    jobs: int = 0


#: Errors that name the column: Postgres' assignment errors, COPY's context, our own messages.
_NAMED = (
    re.compile(r'column "?(c\d+)"? '),
    re.compile(r"column '(c\d+)'"),
    re.compile(r"\.\"?(c\d+)\"? of type"),
    re.compile(r"column (c\d+)\b"),
    re.compile(r"column \"?'?(c\d+)"),
)
_PARAMETER = re.compile(r"parameter \$(\d+)")


def columns_of(error: str, columns: Sequence[str]) -> list[str]:
    """The case columns an error message names (Spark's writer names one, ours every refused one)."""
    named: set[str] = set()
    for pattern in _NAMED:
        named.update(m for m in pattern.findall(error) if m in columns)
    if named:
        return sorted(named, key=columns.index)
    params = {int(m) for m in _PARAMETER.findall(error)}
    if len(params) == 1:
        # Spark's INSERT binds n first, then the cases' columns in order; pgjdbc may rewrite a batch into one
        # multi-row INSERT (reWriteBatchedInserts), numbering the parameters on across rows.
        index = (params.pop() - 1) % (len(columns) + 1) - 1
        if 0 <= index < len(columns):
            return [columns[index]]
    return []


def run(
    cases: Sequence[Case],
    admin: Any,
    spark: Any,
    write: Callable[[Any, str], None],
    prefix: str,
    alone: Collection[int] = (),
    threads: int = 4,
) -> Outcome:
    """Write every case with ``write(df, table)``, narrowing failures down to their cases.

    Cases in ``alone`` (expected to fail, e.g. refused by the other writer) are written one per job,
    ``threads`` jobs at a time: a failing case costs one job instead of a narrowing; the rest go together.
    """
    outcome = Outcome()
    lock = threading.Lock()
    together = [i for i in range(len(cases)) if i not in alone]

    def attempt(group: list[int]) -> list[list[int]]:
        """Write one group; returns the groups still to write."""
        table = f"public.{prefix}_{uuid.uuid4().hex[:10]}"
        names = [f"c{i}" for i in group]
        admin.execute(
            sql.SQL("CREATE TABLE {} (n int, {})").format(
                sql.SQL(table),
                sql.SQL(", ").join(
                    sql.SQL(f"{name} {cases[i].column}") for name, i in zip(names, group, strict=True)
                ),
            )
        )
        with lock:
            outcome.jobs += 1
        try:
            write(frame(spark, [cases[i] for i in group], names), table)
        except Exception as e:
            message = str(e)
            named = columns_of(message, names)
            admin.execute(f"DROP TABLE {table}")
            with lock:
                if named:
                    failed = {group[names.index(name)] for name in named}
                    for index in failed:
                        outcome.failed[index] = message
                    rest = [i for i in group if i not in failed]
                    return [rest] if rest else []
                if len(group) == 1:
                    outcome.failed[group[0]] = message
                    return []
            half = len(group) // 2
            return [group[:half], group[half:]]
        with lock:
            for name, i in zip(names, group, strict=True):
                outcome.written[i] = (table, name)
        return []

    pending: list[list[int]] = [[i] for i in sorted(alone)] + ([together] if together else [])
    with ThreadPoolExecutor(threads) as pool:
        while pending:
            batch, pending = pending, []
            for more in pool.map(attempt, batch):
                pending.extend(more)
    return outcome


def frame(spark: Any, cases: Sequence[Case], names: Sequence[str]) -> Any:
    """One DataFrame: ``n`` (the row number) and a column per case, shorter cases padded with NULL."""
    rows = max(len(c.values) for c in cases)
    data = [(n, *[case.values[n] if n < len(case.values) else None for case in cases]) for n in range(rows)]
    columns = [f"{name} {case.spark_type}" for name, case in zip(names, cases, strict=True)]
    schema = ", ".join(["n int", *columns])
    return spark.createDataFrame(data, schema)


def differs(admin: Any, a: tuple[str, str], b: tuple[str, str], rows: int, by_row: bool = True) -> list[Any]:
    """Rows (n, text of the value) in one column and not the other, both ways (``EXCEPT ALL``); with
    ``by_row`` False, the non-NULL values alone, wherever they are."""
    (ta, ca), (tb, cb) = a, b
    n = "n" if by_row else "0"
    where = f"n < {rows}" if by_row else f"n < {rows} AND {{c}} IS NOT NULL"
    wa, wb = where.format(c=ca), where.format(c=cb)
    query = (
        f"(SELECT 'spark' AS side, {n} AS n, {ca}::text AS v FROM {ta} WHERE {wa} "
        f"EXCEPT ALL SELECT 'spark', {n}, {cb}::text FROM {tb} WHERE {wb}) "
        f"UNION ALL (SELECT 'ours', {n}, {cb}::text FROM {tb} WHERE {wb} "
        f"EXCEPT ALL SELECT 'ours', {n}, {ca}::text FROM {ta} WHERE {wa}) ORDER BY 2, 1"
    )
    return list(admin.execute(query).fetchall())
