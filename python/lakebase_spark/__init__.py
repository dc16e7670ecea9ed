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

from . import _lazy, _moved

# Errors are imported now (cheap, and `except lakebase_spark.LakebaseSparkError` must not import the
# rest); everything else on first use (PEP 562), so `import lakebase_spark` (and the pytest plugin,
# which every pytest run in an environment with the package loads) does not import databricks-sdk,
# psycopg or cryptography until something needs them.
from . import errors as _errors
from .errors import *  # noqa: F403 - every error type is public (errors.__all__)

if TYPE_CHECKING:
    from .postgres.connection import connect
    from .reading import PartitionKeyError, ReplicaLagError, Snapshot, SnapshotError, export_snapshot, read
    from .serving.service import BrokerService, shared_broker_service, stop_shared_broker_services
    from .spark.classpath import jar_path, postgres_driver_jar, provider_stats
    from .spark.options import LakebaseOptions, lakebase_options
    from .sql.catalogs import catalog, configure
    from .targets import Address
    from .tokens.broker import BrokerStats, TokenBroker
    from .tokens.credentials import Credential, Secret
    from .writing import WriteResult, foreach_batch, write

_LAZY = {
    "Address": ".targets",
    "BrokerService": ".serving.service",
    "BrokerStats": ".tokens.broker",
    "Credential": ".tokens.credentials",
    "LakebaseOptions": ".spark.options",
    "PartitionKeyError": ".reading",
    "ReplicaLagError": ".reading",
    "Secret": ".tokens.credentials",
    "Snapshot": ".reading",
    "SnapshotError": ".reading",
    "TokenBroker": ".tokens.broker",
    "WriteResult": ".writing",
    "catalog": ".sql.catalogs",
    "configure": ".sql.catalogs",
    "connect": ".postgres.connection",
    "export_snapshot": ".reading",
    "foreach_batch": ".writing",
    "jar_path": ".spark.classpath",
    "lakebase_options": ".spark.options",
    "postgres_driver_jar": ".spark.classpath",
    "provider_stats": ".spark.classpath",
    "read": ".reading",
    "shared_broker_service": ".serving.service",
    "stop_shared_broker_services": ".serving.service",
    "write": ".writing",
}


__all__ = [
    "Address",
    "BrokerService",
    "BrokerStats",
    "Credential",
    "LakebaseOptions",
    "PartitionKeyError",
    "ReplicaLagError",
    "Secret",
    "Snapshot",
    "SnapshotError",
    "TokenBroker",
    "WriteResult",
    "catalog",
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
__all__ += _errors.__all__

__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, __all__)
_moved.install()  # old module paths (lakebase_spark.service, ...) keep working, with a warning

__version__ = "0.1.0"
