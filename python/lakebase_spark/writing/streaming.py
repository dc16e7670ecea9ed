"""Structured Streaming into Lakebase: a ``foreachBatch`` sink that is exactly once per micro-batch.

Each micro-batch is one :func:`~lakebase_spark.writing.writer.write` whose write id is the query's id
(stable across restarts from the same checkpoint) and the batch id. A batch that Spark replays after a
restart finds its write finished in the commit log and does nothing; one that died midway finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import WriteInputError
from ..names import TableLike, TableName
from ..targets import DEFAULT_DATABASE, Target
from .write_ids import QUERY_ID_PROPERTY, stream_write_id
from .writer import Mode, write

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame

    from ..serving.service import BrokerService

__all__ = ["foreach_batch"]


def foreach_batch(
    table: TableLike,
    *,
    mode: Mode = "append",
    endpoint: str | None = None,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    key: str | Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
    query_id: str | None = None,
    atomic: bool = False,
    broker: BrokerService | None = None,
    workspace_client: WorkspaceClient | None = None,
    options: dict[str, str] | None = None,
    jar_free: bool = False,
) -> Callable[[DataFrame, int], None]:
    """A function for ``writeStream.foreachBatch(...)`` writing each micro-batch exactly once.

    ``mode`` is ``append`` or ``upsert`` (with ``key`` and optionally ``order_by``). ``query_id``
    defaults to the running query's id, which Spark keeps in the checkpoint; give a stable name of your
    own if the same checkpoint may be replaced.

    ``jar_free=True`` writes each micro-batch through ``format("lakebase")`` (Spark 4, no jar): its
    options are built per micro-batch (``source_options``), so a token minted by the client lives
    for one micro-batch, and streams without a reachable broker run for days.

    Example::

        query = (spark.readStream.format("rate").load()
                 .writeStream.foreachBatch(foreach_batch("public.events", endpoint=ENDPOINT))
                 .option("checkpointLocation", "/tmp/ck").start())
    """
    Target.of(endpoint, instance)  # refused now, not at the first micro-batch
    if mode not in ("append", "upsert"):
        raise WriteInputError(f"a streaming sink writes with mode 'append' or 'upsert', not {mode!r}")

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        stream = query_id or _query_id(batch)
        if jar_free:
            _write_jar_free(batch, stream_write_id(stream, batch_id))
            return
        write(
            batch,
            table,
            mode=mode,
            endpoint=endpoint,
            instance=instance,
            database=database,
            key=key,
            order_by=order_by,
            write_id=stream_write_id(stream, batch_id),
            atomic=atomic,
            broker=broker,
            workspace_client=workspace_client,
            options=options,
        )

    def _write_jar_free(batch: DataFrame, write_id: str) -> None:
        from ..datasource import source_options
        from ..datasource.frames import save

        built = source_options(
            endpoint, instance=instance, database=database, broker=broker, workspace_client=workspace_client
        )
        save(
            batch,
            TableName.parse(table),
            {**built, **(options or {})},
            mode=mode,
            key=key,
            order_by=order_by,
            write_id=write_id,
            atomic=atomic,
        )

    return write_batch


def _query_id(batch: DataFrame) -> str:
    found = None
    try:
        found = batch.sparkSession.sparkContext.getLocalProperty(QUERY_ID_PROPERTY)
    except Exception:  # Spark Connect sessions have no SparkContext
        found = None
    if not found:
        raise WriteInputError(
            "cannot tell which streaming query this batch belongs to (no SparkContext, or not called by "
            "foreachBatch): pass foreach_batch(..., query_id='<a stable name for this stream>')"
        )
    return str(found)
