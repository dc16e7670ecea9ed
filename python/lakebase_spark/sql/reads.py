"""The driver's side of a catalog read (``SELECT ... FROM lb.s.t``) that goes through the jar's
binary-COPY reader: the JVM's ``CatalogScanBuilder`` asks the broker to ``plan`` it (the columns'
decoders and balanced partitions, as ``lakebase_spark.read`` plans its own), and, when the query runs,
for the query's ``snapshot`` (exported once per Spark SQL execution and shared by every table it reads,
so a join sees one moment) which it ``release``s when the execution ends. Routes and fields are checked
against ReadCoordinator.java by tests/test_contract.py.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..names import TableName
from ..postgres.snapshots import Snapshot, SnapshotError, check_hold, export_snapshot
from ..reading.ranges import key_predicates, page_predicates
from ..spark.copy_columns import copy_columns, copy_read_options
from ..targets import Address, Target
from ._requests import serve, text_field

if TYPE_CHECKING:
    from ..serving.service import BrokerService

__all__ = ["PLAN", "RELEASE", "SNAPSHOT", "ReadCoordinator", "serve_reads"]

log = logging.getLogger(__name__)

PLAN = "/v1/reads/plan"
SNAPSHOT = "/v1/reads/snapshot"
RELEASE = "/v1/reads/release"
#: How many ended queries are remembered (each ends once; stragglers come within seconds).
ENDED_KEPT = 10_000
#: The plan answer's fields: the COPY source's options, or why the JDBC reader must read instead.
OPTIONS, UNSUPPORTED = "options", "unsupported"


class ReadCoordinator:
    """The snapshots the JVMs of one broker's queries hold, by query (a JVM's SQL execution)."""

    def __init__(self, broker: BrokerService) -> None:
        self._broker = broker
        self._snapshots: dict[tuple[str, str, str], Snapshot] = {}
        #: Queries whose execution ended (bounded): a straggling task of one must not export anew.
        self._ended: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._lock = threading.Lock()
        #: Each target's host, looked up once (a workspace API call), not on every query.
        self._addresses: dict[str, Address] = {}

    def _address(self, target: Target) -> Address:
        from ..postgres.connection import resolve_address

        address = self._addresses.get(str(target))
        if address is None:
            address = self._addresses[str(target)] = resolve_address(self._broker.broker, **target.keywords())
        return address

    def plan(self, request: dict[str, Any]) -> dict[str, Any]:
        from pyspark.sql.types import StructType

        from ..postgres.connection import connect

        target, database = _database(request)
        table = TableName.parse((_text(request, "namespace"), _text(request, "table")))
        schema = StructType.fromJson(json.loads(_text(request, "schema")))
        partitions = request.get("partitions")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise InvalidArgumentError(f"partitions must be a whole number of at least 1, got {partitions!r}")
        key = request.get("key")
        where = request.get("where")
        with connect(
            **target.keywords(),
            database=database,
            tokens=self._broker.broker,
            address=self._address(target),
            autocommit=True,
        ) as conn:
            planned = copy_columns(conn, table, schema, {})
            if planned.columns is None:
                return {UNSUPPORTED: planned.unsupported}
            predicates = (
                key_predicates(conn, table, [k.strip() for k in key.split(",")], partitions)
                if isinstance(key, str) and key.strip()
                else page_predicates(conn, table, partitions)
            )
        if isinstance(where, str) and where:
            # Spark's own Postgres dialect compiled it from the query's pushed filters (on the JVM).
            predicates = [f"({p}) AND ({where})" for p in predicates]
        log.info("lakebase: catalog read of %s in %d partition(s)", table, len(predicates))
        return {OPTIONS: copy_read_options(table, planned.columns, predicates)}

    def snapshot(self, request: dict[str, Any]) -> dict[str, Any]:
        target, database = _database(request)
        query = _text(request, "query")
        hold = request.get("hold_seconds")
        if not isinstance(hold, int | float) or isinstance(hold, bool):
            raise InvalidArgumentError(f"hold_seconds must be a number, got {hold!r}")
        check_hold(float(hold))
        key = (query, str(target), database)
        with self._lock:
            if query in self._ended:
                raise SnapshotError(f"query {query} has ended: its snapshot was released")
            held = self._snapshots.get(key)
            if held is not None and not held.closed:
                return {"snapshot": held.id}
            snapshot = export_snapshot(
                **target.keywords(),
                database=database,
                hold=float(hold),
                broker=self._broker,
                address=self._address(target),
            )
            self._snapshots[key] = snapshot
        log.info("lakebase: query %s reads snapshot %s of %s", query, snapshot.id, target)
        return {"snapshot": snapshot.id}

    def release(self, request: dict[str, Any]) -> dict[str, Any]:
        query = _text(request, "query")
        with self._lock:
            keys = [k for k in self._snapshots if k[0] == query]
            released = [self._snapshots.pop(k) for k in keys]
            self._ended[query] = None
            while len(self._ended) > ENDED_KEPT:
                self._ended.popitem(last=False)
        for snapshot in released:
            snapshot.close()
        log.debug("lakebase: query %s ended, %d snapshot(s) released", query, len(released))
        return {"released": len(released)}


def serve_reads(broker: BrokerService) -> None:
    """Let the JVMs of ``broker`` plan catalog reads with this process (once per broker)."""
    reads = ReadCoordinator(broker)
    serve(broker, {PLAN: reads.plan, SNAPSHOT: reads.snapshot, RELEASE: reads.release})


def _database(request: dict[str, Any]) -> tuple[Target, str]:
    return Target.of(request.get("endpoint"), request.get("instance")), _text(request, "database")


def _text(request: dict[str, Any], name: str) -> str:
    return text_field(request, name, InvalidArgumentError)
