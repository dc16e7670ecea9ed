"""``lakebase_spark.write``: COPY-speed writes that land exactly once, in every save mode plus upsert.

The rows move on the executors: each partition is one ``COPY ... FROM STDIN`` (text format) over a
connection from the ``lakebase`` provider, committed together with its marker in the commit log
(``commits.py``), so a retried, speculative or re-run task commits nothing twice. The driver does the
rest with psycopg: it checks the input against the table before any row moves, creates a missing
table with Spark's own type mapping, and, for the staged modes, applies the staged rows to the target
in one transaction:

- ``append``: rows go straight into the target (fastest). If the job fails, the target holds the
  partitions committed so far, all listed in the commit log under the write id; rerunning with the
  same ``write_id`` writes only the rest. ``atomic=True`` stages instead: all rows or none.
- ``overwrite``: rows are staged, then ``DELETE`` + ``INSERT ... SELECT`` in one transaction. Readers
  see the old rows or the new ones (MVCC), never an empty table; indexes, constraints, grants,
  triggers and dependent views stay, because the table itself stays.
- ``upsert``: rows are staged, then ``INSERT ... ON CONFLICT (key) DO UPDATE`` in one transaction.
- ``errorifexists``/``error`` and ``ignore`` behave as in Spark; a missing table is created first.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import WriteError, WriteInputError
from ..names import TableLike, TableName
from ..postgres.connection import connect, resolve_address
from ..serving.service import BrokerService, shared_broker_service
from ..spark.options import lakebase_options
from ..targets import DEFAULT_DATABASE, Address, Target
from .jobs import COPY_SOURCE, CopyJob
from .plans import MODES, Database, Mode, WriteRequest, plan_write
from .results import WriteResult
from .tables import TableInfo

if TYPE_CHECKING:
    import psycopg
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame

__all__ = ["COPY_SOURCE", "MODES", "BrokerConnector", "Mode", "WriteResult", "write"]

log = logging.getLogger(__name__)


def write(
    df: DataFrame,
    table: TableLike,
    *,
    mode: Mode = "append",
    endpoint: str | None = None,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    key: str | Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
    write_id: str | None = None,
    atomic: bool = False,
    num_partitions: int | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    options: dict[str, str] | None = None,
) -> WriteResult:
    """Write ``df`` into ``table`` on a Lakebase endpoint (or instance) with COPY, exactly once.

    Parameters
    ----------
    table:
        ``"schema.table"`` by Postgres' rules (unquoted names fold to lower case; double-quote others),
        or an exact ``(schema, table)`` tuple.
    mode:
        ``append``, ``overwrite`` (atomic), ``upsert`` (needs ``key``), ``errorifexists``/``error``,
        ``ignore``. A missing table is created with Spark's JDBC type mapping (not for upsert).
    key, order_by:
        Upsert only: the conflict key (columns with a unique index in the table) and, when a key can
        repeat in the input, the column(s) whose greatest values win (compared in order). Different rows
        of one key that tie on every ``order_by`` column are refused: the winner would be arbitrary.
    write_id:
        Names the write for exactly-once reruns (Delta's ``txnAppId``/``txnVersion``): a rerun with the
        id of a finished write does nothing; one of a failed write finishes it. The rerun must be the same
        write (mode, columns, key; the same rows split into the same partitions): a call reusing the id
        for another write is refused, naming the first use. Ids are remembered for 30 days
        (``commits.RETENTION``). At most 512 characters, no NUL. Default: a new random id.
    atomic:
        For ``append``: stage the rows and apply them in one transaction, so a failed job leaves the
        target as it was (costs a second pass over the rows in Postgres).
    num_partitions:
        At most this many partitions (connections) write at once: ``df.coalesce(num_partitions)``.
    options:
        Extra options for the data source (e.g. the test-only fault points, see the README).
    """
    Target.of(endpoint, instance)  # exactly one, well-formed: before the DataFrame is looked at
    request = WriteRequest.of(
        df.columns, table, mode=mode, key=key, order_by=order_by, write_id=write_id, atomic=atomic
    )
    if num_partitions is not None and num_partitions < 1:
        raise WriteInputError(f"num_partitions must be at least 1, got {num_partitions}")
    service = broker.start() if broker is not None else shared_broker_service(workspace_client)
    # Kept as LakebaseOptions: a dict whose repr masks the broker secret.
    spark_options = lakebase_options(endpoint, instance=instance, database=database, broker=service)
    db = Database(BrokerConnector(endpoint, instance, database, service))
    plan = plan_write(
        request,
        df.schema,
        db,
        lambda conn: _create_table(df, request.target, spark_options, conn),
    )
    if plan.skipped is not None:
        return plan.skipped
    rows_df = df.coalesce(num_partitions) if num_partitions else df
    job = CopyJob(rows_df, plan.pairs, spark_options, options or {}, request.write_id)
    failure = job.run(plan.into, plan.into_commits)
    if failure is not None:
        raise plan.failed(failure) from failure.error
    return WriteResult(str(request.target), request.write_id, request.mode, plan.finish())


@dataclass
class BrokerConnector:
    """Connections through the process's broker; the host is resolved once (a workspace API call)."""

    endpoint: str | None
    instance: str | None
    database: str
    broker: BrokerService
    _address: Address | None = None

    @property
    def name(self) -> str:
        return self.database

    def open(self) -> psycopg.Connection[Any]:
        if self._address is None:
            self._address = resolve_address(
                self.broker.broker, endpoint=self.endpoint, instance=self.instance
            )
        return connect(
            endpoint=self.endpoint,
            instance=self.instance,
            database=self.database,
            tokens=self.broker.broker,
            address=self._address,
            autocommit=True,
        )


def _create_table(
    df: DataFrame, target: TableName, spark_options: dict[str, str], conn: psycopg.Connection[Any]
) -> TableInfo:
    """Create the table as Spark's JDBC writer would (its Postgres type mapping), with no rows."""
    (
        df.limit(0)
        .write.format("jdbc")
        .options(**spark_options)
        .option("dbtable", target.quoted())
        .mode("append")
        .save()
    )
    info = TableInfo.load(conn, target)
    if info is None:
        raise WriteError(f"creating table {target} through Spark's JDBC writer left no table behind")
    log.info("created table %s", target)
    return info
