"""The jar-free path: ``spark.read.format("lakebase")`` and ``df.write.format("lakebase")``, a Spark 4
Python data source that needs no jar and no JDBC driver on the cluster (serverless notebooks, standard
access mode without an allowlist, Databricks Connect, any Spark Connect server).

- ``logins.py``: how Python workers log in (the broker, a token that travels with the job, a password role);
- ``options.py``: the options, and :func:`source_options` to build them where the job is planned;
- ``columns.py``, ``partitions.py``, ``reader.py``: reads as Arrow batches from binary COPY;
- ``writer.py``: writes with the COPY writer's guarantees, the driver's part shared with ``write``;
- ``source.py``: the ``DataSource`` Spark sees.

Spark 3.5 has no Python data sources: :func:`register` says so, naming the JDBC path.
"""

from __future__ import annotations

import logging
from typing import Any

from ..errors import LakebaseSparkError
from .options import FORMAT, SourceOptionsError, source_options

log = logging.getLogger(__name__)

#: Spark's switch for pushFilters in Python data sources (Spark 4.1+).
FILTER_PUSHDOWN_CONF = "spark.sql.python.filterPushdown.enabled"

__all__ = ["FORMAT", "JarFreeUnavailableError", "SourceOptionsError", "register", "source_options"]


class JarFreeUnavailableError(LakebaseSparkError, RuntimeError):
    """The session's Spark has no Python data sources (Spark 3.5): use the JDBC path."""


def register(spark: Any) -> None:
    """Register ``format("lakebase")`` on ``spark`` (a classic or Spark Connect session; Spark 4+).

    Call it in each Python thread that writes: Spark's classic writer looks a Python data source up in
    the JVM thread's active session, which a new thread does not have (DATA_SOURCE_NOT_FOUND); this
    makes ``spark`` that thread's active session.
    """
    try:
        from .source import LakebaseDataSource
    except ImportError as e:  # pyspark.sql.datasource is new in Spark 4
        raise JarFreeUnavailableError(
            "format('lakebase') needs Spark 4 (Python data sources); this Spark has none. Use the JDBC path: "
            "spark.read.format('jdbc').options(**lakebase_options(...)) and lakebase_spark.write(...), with "
            f"the provider jar (lakebase_spark.configure). ({e})"
        ) from None
    registry = getattr(spark, "dataSource", None)
    if registry is None:
        raise JarFreeUnavailableError(
            "this Spark session has no spark.dataSource to register format('lakebase') with (Spark 4+ only); "
            "use the JDBC path: lakebase_options(...) and lakebase_spark.write(...)"
        )
    registry.register(LakebaseDataSource)
    try:  # Spark asks a reader for filters only with this on (off by default); readers opt in
        spark.conf.set(FILTER_PUSHDOWN_CONF, "true")
    except (
        Exception
    ) as e:  # a compute that forbids setting it: pushFilters=true then fails in Spark, saying so
        log.info("lakebase: could not enable %s: %s", FILTER_PUSHDOWN_CONF, e)
    jvm_session = getattr(spark, "_jsparkSession", None)  # classic sessions only; Connect has no JVM here
    if jvm_session is not None:
        spark._jvm.org.apache.spark.sql.SparkSession.setActiveSession(jvm_session)
