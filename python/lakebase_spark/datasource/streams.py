"""``writeStream.format("lakebase")``: the jar-free stream writer, exactly once per micro-batch.

A micro-batch is one write whose id is the query's id (stable across restarts from one checkpoint) and
the batch id, as ``foreach_batch`` names it. Spark gives both to the tasks as local properties. Each task
copies its partition with its marker in one transaction (the batch writer's ``copy_partition``); the
driver's ``commit`` records the batch done. A batch Spark runs again after a crash (its own commit lost)
finds the DONE row, or its partitions' markers, and writes nothing twice.

Spark plans the writer anew for each micro-batch, so a token minted by the client lives for one batch.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pyspark.sql.datasource import DataSourceStreamArrowWriter, WriterCommitMessage

from ..errors import WriteError
from ..writing.plans import WritePlan
from ..writing.write_ids import QUERY_ID_PROPERTY, stream_write_id
from .logins import Login
from .writer import Committed, copy_partition

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["BATCH_ID_PROPERTY", "LakebaseStreamWriter"]

log = logging.getLogger(__name__)

#: The local property Spark's micro-batch execution gives each task (``MicroBatchExecution.BATCH_ID_KEY``).
BATCH_ID_PROPERTY = "streaming.sql.batchId"


class LakebaseStreamWriter(DataSourceStreamArrowWriter):
    """Appends each micro-batch exactly once; picklable (Spark ships it to the tasks and the committer)."""

    def __init__(self, plan: WritePlan, login: Login) -> None:
        self.plan = plan
        self.login = login

    def write(self, iterator: Iterator[pa.RecordBatch]) -> Committed:
        from pyspark import TaskContext

        context = TaskContext.get()
        query = context.getLocalProperty(QUERY_ID_PROPERTY) if context else None
        batch = context.getLocalProperty(BATCH_ID_PROPERTY) if context else None
        if not query or batch is None:
            raise WriteError(
                "lakebase: this task has no streaming query or micro-batch id, so its rows could not be "
                "written exactly once: write streams with writeStream.format('lakebase') (micro-batch "
                "triggers; continuous processing is not supported)"
            )
        return copy_partition(self.plan, self.login, stream_write_id(query, int(batch)), iterator)

    def commit(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        done = [m for m in messages if isinstance(m, Committed)]
        ids = {m.write_id for m in done}
        if not ids:  # an empty micro-batch: no task ran
            return
        if len(ids) > 1 or not next(iter(ids)).endswith(f"/{batchId}"):
            raise WriteError(f"lakebase: the tasks of micro-batch {batchId} reported different writes: {ids}")
        (write_id,) = ids
        request = dataclasses.replace(self.plan.request, write_id=write_id)
        rows = dataclasses.replace(self.plan, request=request).finish()
        log.info(
            "lakebase: micro-batch %d: %d rows into %s (write %s)", batchId, rows, self.plan.target, write_id
        )

    def abort(self, messages: list[WriterCommitMessage | None], batchId: int) -> None:
        written = [m for m in messages if isinstance(m, Committed) and not m.skipped]
        log.warning(
            "lakebase: micro-batch %d into %s failed; %d partition(s) (%d rows) were committed and stay: "
            "when the query restarts from its checkpoint, Spark runs the batch again and only the rest "
            "is written",
            batchId,
            self.plan.target,
            len(written),
            sum(m.rows for m in written),
        )
