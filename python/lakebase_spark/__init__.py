"""lakebase-spark: Spark JDBC to Databricks Lakebase with rotating OAuth database credentials.

Typical use::

    from pyspark.sql import SparkSession
    import lakebase_spark

    spark = lakebase_spark.configure(SparkSession.builder).getOrCreate()
    opts = lakebase_spark.lakebase_options("projects/p/branches/main/endpoints/primary")
    df = spark.read.format("jdbc").options(**opts).option("dbtable", "public.orders").load()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _lazy

# Errors are imported now (cheap, and `except lakebase_spark.LakebaseSparkError` must not import the
# rest); everything else on first use (PEP 562), so `import lakebase_spark` (and the pytest plugin,
# which every pytest run in an environment with the package loads) does not import databricks-sdk,
# psycopg or cryptography until something needs them.
from .errors import (
    BrokerError,
    CredentialError,
    DatabaseConnectionError,
    EndpointNotFoundError,
    InvalidArgumentError,
    InvalidEndpointNameError,
    InvalidRequestError,
    InvalidTableNameError,
    JarNotFoundError,
    LakebaseSparkError,
    MissingDependencyError,
    PermissionDeniedError,
    TLSRequiredError,
    WorkspaceRefusalError,
    WriteError,
    WriteInputError,
)

if TYPE_CHECKING:
    from .broker import BrokerStats, TokenBroker
    from .connection import connect
    from .credentials import Credential, Secret
    from .options import LakebaseOptions, lakebase_options
    from .reading import PartitionKeyError, ReplicaLagError, Snapshot, SnapshotError, export_snapshot, read
    from .service import BrokerService, shared_broker_service, stop_shared_broker_services
    from .session import configure, jar_path, postgres_driver_jar, provider_stats
    from .writing import WriteResult, foreach_batch, write

_LAZY = {
    "BrokerService": ".service",
    "BrokerStats": ".broker",
    "Credential": ".credentials",
    "LakebaseOptions": ".options",
    "PartitionKeyError": ".reading",
    "ReplicaLagError": ".reading",
    "Secret": ".credentials",
    "Snapshot": ".reading",
    "SnapshotError": ".reading",
    "TokenBroker": ".broker",
    "WriteResult": ".writing",
    "configure": ".session",
    "connect": ".connection",
    "export_snapshot": ".reading",
    "foreach_batch": ".writing",
    "jar_path": ".session",
    "lakebase_options": ".options",
    "postgres_driver_jar": ".session",
    "provider_stats": ".session",
    "read": ".reading",
    "shared_broker_service": ".service",
    "stop_shared_broker_services": ".service",
    "write": ".writing",
}


__all__ = [
    "BrokerError",
    "BrokerService",
    "BrokerStats",
    "Credential",
    "CredentialError",
    "DatabaseConnectionError",
    "EndpointNotFoundError",
    "InvalidArgumentError",
    "InvalidEndpointNameError",
    "InvalidRequestError",
    "InvalidTableNameError",
    "JarNotFoundError",
    "LakebaseOptions",
    "LakebaseSparkError",
    "MissingDependencyError",
    "PartitionKeyError",
    "PermissionDeniedError",
    "ReplicaLagError",
    "Secret",
    "Snapshot",
    "SnapshotError",
    "TLSRequiredError",
    "TokenBroker",
    "WorkspaceRefusalError",
    "WriteError",
    "WriteInputError",
    "WriteResult",
    "configure",
    "connect",
    "export_snapshot",
    "foreach_batch",
    "jar_path",
    "lakebase_options",
    "postgres_driver_jar",
    "provider_stats",
    "read",
    "shared_broker_service",
    "stop_shared_broker_services",
    "write",
]

__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, __all__)

__version__ = "0.1.0"
