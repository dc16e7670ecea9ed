"""Reading one table of one endpoint: partitions on any key or by pages (:mod:`.ranges`); every
partition in one exported snapshot (which lives below the data paths, in ``postgres/snapshots.py``:
the sharded and jar-free readers import it too)."""

from ..postgres.snapshots import Snapshot, SnapshotError, export_snapshot
from .ranges import PartitionKeyError
from .reads import read
from .replicas import ReplicaLagError

__all__ = ["PartitionKeyError", "ReplicaLagError", "Snapshot", "SnapshotError", "export_snapshot", "read"]
