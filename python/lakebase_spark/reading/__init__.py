"""Reading one table of one endpoint: partitions on any key or by pages (:mod:`.ranges`), and one
snapshot for all of a read's partitions (:mod:`.snapshots`)."""

from .ranges import PartitionKeyError
from .reads import export_snapshot, read
from .replicas import ReplicaLagError
from .snapshots import Snapshot, SnapshotError

__all__ = ["PartitionKeyError", "ReplicaLagError", "Snapshot", "SnapshotError", "export_snapshot", "read"]
