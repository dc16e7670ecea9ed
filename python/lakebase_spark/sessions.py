"""What the package asks of a Spark session, answered the same way for classic and Spark Connect sessions.

A Spark Connect session (Databricks standard access mode and serverless notebooks, Databricks Connect,
``SparkSession.builder.remote(...)``) has no ``sparkContext`` and no py4j gateway: everything here goes
through ``spark.conf`` and the DataFrame API, and touches ``sparkContext`` only for a classic session.
"""

from __future__ import annotations

import contextlib
import re
import socket
from typing import Any

from .errors import BrokerError

__all__ = [
    "active_session",
    "broker_bind_host",
    "conf",
    "default_parallelism",
    "is_connect",
    "is_stopped",
]

LOOPBACK = "127.0.0.1"
_LOCAL_CORES = re.compile(r"local\[(\d+|\*)(?:,\s*\d+)?\]")
_LOCAL_CLUSTER = re.compile(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,")


def active_session() -> Any:
    """The active session of this thread or process (a classic or a Connect ``SparkSession``), or None."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    with contextlib.suppress(Exception):  # a Connect session whose server went away
        session = SparkSession.getActiveSession()
        if session is not None:
            return session
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError:  # pyspark without the connect extra
        return None
    with contextlib.suppress(Exception):
        return ConnectSession.getActiveSession()
    return None


def is_connect(spark: Any) -> bool:
    """True for a Spark Connect session (no SparkContext, no JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def conf(spark: Any, key: str, default: str | None = None) -> str | None:
    """A Spark configuration value as the session sees it (``spark.conf``, which both kinds have)."""
    try:
        value = spark.conf.get(key, default)
    except Exception:  # an unknown static key raises on some versions: treat as unset
        return default
    return None if value is None else str(value)


def is_stopped(spark: Any) -> bool:
    """Whether ``spark`` has stopped (Connect: ``is_stopped``; classic: its SparkContext is gone)."""
    if is_connect(spark):
        return bool(getattr(spark, "is_stopped", False))
    from pyspark import SparkContext

    active = SparkContext._active_spark_context
    return active is None or spark.sparkContext is not active


def default_parallelism(spark: Any) -> int:
    """How many tasks run at once by default: ``sparkContext.defaultParallelism``, or (Connect) what the
    configuration says (``spark.default.parallelism``, else the master's cores)."""
    if not is_connect(spark):
        return int(spark.sparkContext.defaultParallelism)
    configured = conf(spark, "spark.default.parallelism")
    if configured and configured.isdigit():
        return int(configured)
    master = conf(spark, "spark.master") or ""
    local = _LOCAL_CORES.fullmatch(master)
    if local:
        import os

        return (os.cpu_count() or 2) if local.group(1) == "*" else int(local.group(1))
    cluster = _LOCAL_CLUSTER.match(master)
    if cluster:
        return int(cluster.group(1)) * int(cluster.group(2))
    if master == "local":
        return 1
    return 2 * int(conf(spark, "spark.executor.instances") or "4")


def broker_bind_host(spark: Any | None) -> str:
    """Where the token broker must listen so that every executor JVM of ``spark`` can reach it.

    Loopback when the executors run on this machine only (a ``local`` master); otherwise the driver's
    own address (``spark.driver.host``). Under Spark Connect the driver may be another machine (a
    Databricks Connect client on a laptop): then no address of this process is reachable by the
    executors, and this raises :class:`BrokerError` saying what works instead.
    """
    if spark is None:
        return LOOPBACK
    master = conf(spark, "spark.master") or "local"
    driver_host = conf(spark, "spark.driver.host")
    if is_connect(spark) and driver_host and not _is_local_address(driver_host):
        raise BrokerError(
            f"this Python process is a Spark Connect client of a driver at {driver_host!r}, another "
            "machine, so the executors cannot reach a token broker started here. Run the job where the "
            "driver runs: a notebook on the cluster (dedicated or standard access mode), a Databricks "
            "job, or spark-submit on the cluster"
        )
    if master.startswith("local"):
        return LOOPBACK
    return driver_host or LOOPBACK


def _is_local_address(host: str) -> bool:
    """True when ``host`` names an address of this machine (one we can bind a socket to)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    for family, _, _, _, address in infos:
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((address[0], 0))
            return True
    return False
