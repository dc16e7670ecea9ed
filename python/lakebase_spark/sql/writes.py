"""The driver's side of a catalog write (``INSERT INTO lb.s.t ...``): the JVM's ``CatalogWrite`` asks the
broker to plan it (``begin``), runs the COPY writer on the executors, then asks to finish it
(``commit``) or says it failed (``abort``). Planning and finishing are ``lakebase_spark.write``'s own
(``writing/plans.py``): the same table checks, commit log, stage and apply, so ``INSERT`` has
``write``'s guarantees. The routes and fields are checked against WriteCoordinator.java by
tests/test_contract.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from ..errors import WriteError, WriteInputError
from ..targets import Target
from ..writing.jobs import JobFailure, copy_options
from ..writing.plans import Database, WritePlan, WriteRequest, plan_write
from ..writing.writer import BrokerConnector
from ._requests import serve, text_field

if TYPE_CHECKING:
    import psycopg

    from ..serving.service import BrokerService
    from ..writing.tables import TableInfo

__all__ = ["ABORT", "BEGIN", "COMMIT", "OPTIONS", "WriteCoordinator", "serve_writes"]

log = logging.getLogger(__name__)

BEGIN = "/v1/writes/begin"
COMMIT = "/v1/writes/commit"
ABORT = "/v1/writes/abort"
#: The begin answer's field: the COPY writer's options for the write.
OPTIONS = "options"
#: The catalog's two modes: INSERT INTO (and CTAS, df.writeTo(...).append()) and INSERT OVERWRITE.
CATALOG_MODES = ("append", "overwrite")


class WriteCoordinator:
    """The writes the JVMs of one broker are running, by write id (the Spark query's id)."""

    def __init__(self, broker: BrokerService) -> None:
        self._broker = broker
        self._plans: dict[str, WritePlan] = {}
        self._lock = threading.Lock()

    def begin(self, request: dict[str, Any]) -> dict[str, Any]:
        from pyspark.sql.types import StructType

        mode = _field(request, "mode")
        if mode not in CATALOG_MODES:
            raise WriteInputError(f"a catalog write is one of {CATALOG_MODES}, not {mode!r}")
        namespace = request.get("namespace")
        if not isinstance(namespace, str):
            raise WriteInputError("a Lakebase catalog's tables are schema.table: name the table's schema")
        schema = StructType.fromJson(json.loads(_field(request, "schema")))
        write = WriteRequest.of(
            schema.fieldNames(),
            (namespace, _field(request, "table")),
            mode=mode,
            write_id=_field(request, "write_id"),
            atomic=request.get("atomic") is True,
        )
        # A query's id is never reused: a failed catalog write cannot be resumed, so its stage is dropped.
        write = dataclasses.replace(write, named=False)
        plan = plan_write(write, schema, Database(self._connector(request)), _no_create)
        if plan.skipped is not None:  # cannot happen for a fresh query id; say so rather than write twice
            raise WriteError(f"write {write.write_id} into {write.target} was already recorded as finished")
        with self._lock:
            self._plans[write.write_id] = plan
        log.info("catalog %s into %s planned (write %s)", mode, write.target, write.write_id)
        return {OPTIONS: copy_options(plan.into, plan.pairs, write.write_id, plan.into_commits)}

    def commit(self, request: dict[str, Any]) -> dict[str, Any]:
        # Kept until it finished: if the finish fails (a staged row the table refuses), Spark aborts next.
        plan = self._take(request, keep=True)
        rows = plan.finish()
        self._take(request)
        return {"rows": rows}

    def abort(self, request: dict[str, Any]) -> dict[str, Any]:
        plan = self._take(request)
        error = plan.failed(
            JobFailure(RuntimeError(str(request.get("error", "the Spark job failed"))), False)
        )
        log.warning("catalog write failed: %s", error)
        plan.abandon()
        return {"error": str(error)}

    def _take(self, request: dict[str, Any], *, keep: bool = False) -> WritePlan:
        write_id = _field(request, "write_id")
        with self._lock:
            plan = self._plans.get(write_id) if keep else self._plans.pop(write_id, None)
        if plan is None:
            raise WriteError(
                f"no catalog write {write_id!r} is running on this driver (was the broker restarted?)"
            )
        return plan

    def _connector(self, request: dict[str, Any]) -> BrokerConnector:
        target = Target.of(request.get("endpoint"), request.get("instance"))
        return BrokerConnector(**target.keywords(), database=_field(request, "database"), broker=self._broker)


def serve_writes(broker: BrokerService) -> None:
    """Let the JVMs of ``broker`` coordinate catalog writes with this process (once per broker)."""
    writes = WriteCoordinator(broker)
    serve(broker, {BEGIN: writes.begin, COMMIT: writes.commit, ABORT: writes.abort})


def _field(request: dict[str, Any], name: str) -> str:
    return text_field(request, name, WriteInputError)


def _no_create(conn: psycopg.Connection[Any]) -> TableInfo:
    # Spark creates a catalog table (CREATE TABLE, CTAS) before it writes: a missing one was dropped since.
    raise WriteError("the table was dropped while the write was being planned; nothing was written")
