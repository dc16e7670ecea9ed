"""``lakebase_spark.read``: one table of one endpoint as a DataFrame, in balanced partitions on any
orderable key (or page ranges without one), every partition seeing the same snapshot by default.

Three readers, all planned here on the driver: the jar's binary-COPY reader (default: each partition
one ``COPY (SELECT ...) TO STDOUT (FORMAT binary)`` decoded into column vectors), the JDBC provider
path (``reader="jdbc"``: ``spark.read.jdbc`` with one exact predicate per partition; also what the
COPY reader hands a read to when a column has no binary decoder), or, with ``jar_free=True``,
``format("lakebase")``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..names import TableName
from ..postgres.snapshots import DEFAULT_HOLD, Snapshot, SnapshotError, check_hold, export_snapshot
from ..spark.readers import check_reader
from ..targets import DEFAULT_DATABASE, Target
from .ranges import PartitionKeyError, key_predicates, page_predicates
from .replicas import await_lag

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame, SparkSession

    from ..serving.service import BrokerService

__all__ = ["read"]

log = logging.getLogger(__name__)


def read(
    spark: SparkSession,
    table: str | tuple[str, str],
    *,
    endpoint: str | None = None,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    key: str | Sequence[str] | None = None,
    partitions: int | None = None,
    consistent: bool = True,
    snapshot: Snapshot | None = None,
    hold: float = DEFAULT_HOLD,
    jar_free: bool = False,
    reader: str = "copy",
    max_lag: float | None = None,
    lag_wait: float = 0.0,
    options: Mapping[str, object] | None = None,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
) -> DataFrame:
    """Read ``table`` (``"schema.table"``) of one endpoint (or instance) as a DataFrame.

    Parameters
    ----------
    key:
        A column to split the read by: any orderable type (integers, numeric, text, uuid, date,
        timestamp), cut at its quantiles from ``pg_stats`` (else a sample) so partitions hold about as
        many rows each. Several columns (``key=("region", "id")``) split by the row of them, cut at a
        sample's quantiles. Without it, the table is split by page (``ctid``) ranges: no key needed.
    partitions:
        How many (default: the session's default parallelism).
    consistent:
        Every partition sees the same snapshot, exported now and held for ``hold`` seconds (default
        one hour): actions on the DataFrame within that time read the table as it was at this call,
        however the application writes meanwhile. After it, they fail saying so. ``False``: each
        partition reads its own moment (Spark's JDBC behaviour; rows moved between partitions' ranges
        while the read runs can be read twice or missed).
    snapshot:
        A :func:`export_snapshot` to read in (several tables at one moment); implies ``consistent``.
    jar_free:
        Through ``format("lakebase")`` (Spark 4; no jar, see the README's "The jar-free path").
    reader:
        With the jar: ``"copy"`` (default), binary COPY decoded straight into Spark's column vectors;
        a read it cannot decode exactly (a column type it has no decoder for, a JDBC-only option)
        goes through ``"jdbc"`` instead, logged at INFO with the reason. ``"jdbc"``: Spark's JDBC
        reader through the ``lakebase`` provider. Both give the same values and types.
    max_lag, lag_wait:
        For a read replica: refuse to read (:class:`~.replicas.ReplicaLagError`) when it is more than
        ``max_lag`` seconds behind its primary, after waiting up to ``lag_wait`` seconds for it to
        catch up. Checked before the snapshot is exported.
    options:
        More Spark read options (``fetchsize``, ``customSchema``, ...).
    """
    name = TableName.parse(table)
    target = Target.of(endpoint, instance)
    if snapshot is not None and not consistent:
        raise SnapshotError("snapshot= makes a read consistent; leave consistent at True (or drop snapshot=)")
    if snapshot is not None and snapshot.scope not in (None, (target, database)):
        raise SnapshotError(
            f"the snapshot was exported on {snapshot.where}, not on {target} database {database!r}: a "
            "snapshot can only be read on the database it was exported from"
        )
    if max_lag is not None and not (max_lag >= 0 and lag_wait >= 0):
        raise InvalidArgumentError(
            f"max_lag and lag_wait must be at least 0, got {max_lag!r} and {lag_wait!r}"
        )
    check_hold(hold)
    check_reader(reader)
    wanted = partitions if partitions is not None else _parallelism(spark)
    if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
        raise PartitionKeyError(f"partitions must be a whole number of at least 1, got {wanted!r}")
    service = _tokens(broker, workspace_client, jar_free=jar_free)
    from ..postgres.connection import connect, resolve_address

    address = resolve_address(service.broker, **target.keywords())  # once, for every connection below
    exported = None  # a snapshot this call exported: closed again if the read cannot be set up
    try:
        # Planned outside the snapshot's transaction: queries there would hold the tables' locks for the
        # whole hold (a DROP or ALTER would wait on it). The ranges are open-ended, so they cover the
        # table at any moment.
        with connect(
            **target.keywords(), database=database, tokens=service.broker, address=address, autocommit=True
        ) as conn:
            if max_lag is not None:
                await_lag(conn, max_lag, wait=lag_wait, where=f"{target} (database {database!r})")
            if consistent and snapshot is None:
                snapshot = exported = export_snapshot(
                    **target.keywords(), database=database, hold=hold, broker=service, address=address
                )
            if snapshot is not None:
                snapshot.check()
            predicates = _plan(conn, name, key, wanted)
    except BaseException:
        if exported is not None:
            exported.close()
        raise
    extra = {k: str(v) for k, v in (options or {}).items()}
    if snapshot is not None:
        extra.update(snapshot.options())
    log.info(
        "lakebase: reading %s in %d partition(s) by %s%s",
        name,
        len(predicates),
        repr(key) if key is not None else "page ranges",
        f", snapshot {snapshot.id}" if snapshot is not None else "",
    )
    if jar_free:
        from ..datasource import source_options
        from ..datasource.frames import load_predicates

        built = source_options(**target.keywords(), database=database, broker=service)
        return load_predicates(spark, name, {**built, **extra}, predicates)
    from ..postgres.connection import connect
    from ..spark.options import lakebase_options
    from ..spark.readers import load_partitions

    built_jdbc = lakebase_options(**target.keywords(), database=database, broker=service, address=address)
    return load_partitions(
        spark,
        name,
        {**built_jdbc, **extra},
        predicates,
        reader=reader,
        connect=lambda: connect(
            **target.keywords(), database=database, tokens=service.broker, address=address, autocommit=True
        ),
        options={k: str(v) for k, v in (options or {}).items()},
    )


def _plan(conn: Any, table: TableName, key: str | Sequence[str] | None, wanted: int) -> list[str]:
    if key is not None:
        return key_predicates(conn, table, key, wanted)
    return page_predicates(conn, table, wanted)


def _tokens(
    broker: BrokerService | None, workspace_client: WorkspaceClient | None, *, jar_free: bool
) -> BrokerService:
    from ..serving.service import BrokerService, default_workspace_client, shared_broker_service

    if jar_free:  # tokens, not a served broker: executors may not reach this process
        if broker is not None:
            return broker
        from ..tokens.broker import TokenBroker

        return BrokerService(TokenBroker(workspace_client or default_workspace_client()))
    return broker.start() if broker is not None else shared_broker_service(workspace_client)


def _parallelism(spark: SparkSession) -> int:
    from ..sessions import default_parallelism

    return default_parallelism(spark)
