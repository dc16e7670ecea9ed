"""Change streams: a table's inserts, updates and deletes from a logical replication slot
(``spark.readStream.format("lakebase")``, ``datasource/change_stream.py``): the offsets of its
batches (:mod:`.offsets`), a batch's rows from pgoutput (:mod:`.batches`), its errors, and the slots'
upkeep (:mod:`.admin`)."""

from ..postgres.slots import (
    LogicalDecodingOffError,
    PublicationMissingError,
    ReplicationError,
    ReplicationPrivilegeError,
    SlotBusyError,
    SlotExistsError,
    SlotLostError,
    SlotMissingError,
    SlotState,
)
from .admin import drop_slot, list_slots
from .errors import ChangeStreamError, SchemaChangedError, SnapshotLostError, TruncatedError

__all__ = [
    "ChangeStreamError",
    "LogicalDecodingOffError",
    "PublicationMissingError",
    "ReplicationError",
    "ReplicationPrivilegeError",
    "SchemaChangedError",
    "SlotBusyError",
    "SlotExistsError",
    "SlotLostError",
    "SlotMissingError",
    "SlotState",
    "SnapshotLostError",
    "TruncatedError",
    "drop_slot",
    "list_slots",
]
