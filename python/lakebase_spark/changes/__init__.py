"""Change streams: a table's inserts, updates and deletes from a logical replication slot
(``spark.readStream.format("lakebase")``, ``datasource/change_stream.py``), or without a slot by
transaction id (``mode=xmin``, ``datasource/xmin_stream.py``, :mod:`.xids`): the offsets of their
batches (:mod:`.offsets`), a batch's rows from pgoutput (:mod:`.batches`), their errors, and the slots'
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
from .xids import XidWraparoundError

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
    "XidWraparoundError",
    "drop_slot",
    "list_slots",
]
