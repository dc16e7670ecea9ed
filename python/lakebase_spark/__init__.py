"""lakebase-spark: Spark JDBC to Databricks Lakebase with rotating OAuth database credentials.

Typical use::

    from pyspark.sql import SparkSession
    import lakebase_spark

    spark = lakebase_spark.configure(SparkSession.builder).getOrCreate()
    opts = lakebase_spark.lakebase_options("projects/p/branches/main/endpoints/primary")
    df = spark.read.format("jdbc").options(**opts).option("dbtable", "public.orders").load()
"""

from __future__ import annotations

from .broker import BrokerStats, TokenBroker
from .connection import connect
from .credentials import Credential, Secret
from .errors import (
    BrokerError,
    CredentialError,
    DatabaseConnectionError,
    EndpointNotFoundError,
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
from .options import LakebaseOptions, lakebase_options
from .reading import PartitionKeyError, ReplicaLagError, Snapshot, SnapshotError, export_snapshot, read
from .service import BrokerService, shared_broker_service, stop_shared_broker_services
from .session import configure, jar_path, postgres_driver_jar, provider_stats
from .writing import WriteResult, foreach_batch, write

__all__ = [
    "BrokerError",
    "BrokerService",
    "BrokerStats",
    "Credential",
    "CredentialError",
    "DatabaseConnectionError",
    "EndpointNotFoundError",
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

__version__ = "0.1.0"
