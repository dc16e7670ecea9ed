"""Session helper: puts the provider jar and a Postgres JDBC driver on Spark's classpath."""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import JarNotFoundError, LakebaseSparkError
from ..sessions import is_connect

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "check_jvm_classes",
    "configure",
    "jar_path",
    "postgres_driver_jar",
    "provider_stats",
    "submit_args",
]

JAR_NAME = "lakebase-spark-provider.jar"
#: Names a local Postgres JDBC driver jar to use instead of downloading one.
DRIVER_JAR_ENV = "LAKEBASE_SPARK_JDBC_DRIVER_JAR"
#: Debian/Ubuntu's libpostgresql-jdbc-java installs the driver here.
SYSTEM_DRIVER_JARS = ("/usr/share/java/postgresql.jar",)
#: Resolved by Spark (Ivy) when no local driver jar is found.
POSTGRES_DRIVER_PACKAGE = "org.postgresql:postgresql:42.7.4"
#: What a Spark driver JVM must be able to load for lakebase_options to work.
PROVIDER_CLASS = "io.lakebase.spark.LakebaseConnectionProvider"
DRIVER_CLASS = "org.postgresql.Driver"

B = TypeVar("B", bound="SparkSession.Builder")


def jar_path() -> str:
    """The provider jar shipped inside this package (built from ``jvm/`` at install time)."""
    # A package resource, not a path next to __file__: Spark needs a real file, which an installed
    # wheel's resources are.
    jar = importlib.resources.files("lakebase_spark").joinpath("jars", JAR_NAME)
    if not jar.is_file():
        raise JarNotFoundError(
            f"the lakebase-spark provider jar is missing (looked for {jar}). It is built when the "
            "package is installed: reinstall with `pip install .` (a JDK must be on PATH), or "
            "`pip install -e .` for a development checkout."
        )
    return str(jar)


def postgres_driver_jar() -> str | None:
    """A local Postgres JDBC driver jar: ``$LAKEBASE_SPARK_JDBC_DRIVER_JAR``, else the system one."""
    named = os.environ.get(DRIVER_JAR_ENV)
    if named:
        if not Path(named).is_file():
            raise JarNotFoundError(
                f"{DRIVER_JAR_ENV}={named!r} names no file: point it at a postgresql-*.jar or unset it"
            )
        return named
    return next((jar for jar in SYSTEM_DRIVER_JARS if Path(jar).is_file()), None)


def configure(builder: B, *, driver_jar: str | None = None) -> B:
    """Add the provider jar and a Postgres JDBC driver to a ``SparkSession.Builder``; return it.

    Like delta's ``configure_spark_with_delta_pip``: call before ``getOrCreate()``. The jars go on
    ``spark.jars`` (shipped to executors) and on the driver's class path, where Spark's
    ``ServiceLoader`` and ``DriverManager`` look. Without a local driver jar, the Maven coordinate
    is added to ``spark.jars.packages`` for Spark to resolve.

    With Spark Connect, the jars belong to the server: a local server
    (``builder.remote("local[*]")``) is started with them; a remote one (``sc://...``) must have been
    started with them, so for such a builder this raises, naming the flags to start the server with.
    """
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # spark-submit and the pyspark shell start the driver JVM before this script runs: what
        # configure() would set for the driver's class path could no longer take effect.
        from pyspark import SparkContext

        SparkContext._ensure_initialized()  # connects to that JVM; creates no SparkContext
        check_jvm_classes(SparkContext._jvm, started_by="spark-submit (or the pyspark shell)")
        return builder  # the jars are there: nothing to add
    current = dict(getattr(builder, "_options", {}))  # keep what the user already set
    remote = str(current.get("spark.remote", ""))
    if remote and not remote.startswith("local"):
        named = driver_jar or postgres_driver_jar() or "<postgresql.jar>"
        raise LakebaseSparkError(
            f"configure() cannot add jars to the Spark Connect server at {remote}: a server loads its jars "
            "when it starts. Start it with the provider jar and a Postgres JDBC driver, e.g. "
            f"start-connect-server.sh --jars {jar_path()},{named} (on Databricks: install both as "
            "cluster libraries), then build the session without configure()"
        )

    def append(key: str, value: str, sep: str) -> None:
        old = current.get(key)
        present = str(old).split(sep) if old else []
        value = sep.join(v for v in value.split(sep) if v not in present)  # configure() twice adds once
        if not value:
            return
        merged = f"{old}{sep}{value}" if old else value
        current[key] = merged
        builder.config(key, merged)

    driver = driver_jar or postgres_driver_jar()
    jars = [jar_path()] + ([driver] if driver else [])
    append("spark.jars", ",".join(jars), ",")
    append("spark.driver.extraClassPath", os.pathsep.join(jars), os.pathsep)
    if driver is None:
        append("spark.jars.packages", POSTGRES_DRIVER_PACKAGE, ",")
    return builder


def check_jvm_classes(jvm: Any, *, started_by: str) -> None:
    """Raise, naming the fix, unless ``jvm`` (a running Spark driver's) can load the provider and the
    Postgres driver. Without them Spark fails later with a bare ``ClassNotFoundException``, or quietly
    uses its ``basic`` provider."""
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    missing = []
    for name in (PROVIDER_CLASS, DRIVER_CLASS):
        try:
            jvm.java.lang.Class.forName(name, False, loader)
        except Exception:  # py4j's error for ClassNotFoundException
            missing.append(name)
    if missing:
        raise JarNotFoundError(
            f"the Spark driver JVM, started by {started_by} before this code ran, cannot load "
            f"{' and '.join(missing)}, and jars cannot be added to a running JVM. Start it with the "
            f"provider and the Postgres JDBC driver: spark-submit {' '.join(submit_args())} <your_job.py> "
            "(`lakebase-spark submit-args` prints these flags), or build the session yourself with "
            "lakebase_spark.configure(SparkSession.builder) in a plain `python` process"
        )


def provider_stats(spark: SparkSession) -> dict[str, int]:
    """The driver JVM's provider counters: logins, broker_fetches, auth_retries, cold_start_retries.

    Executors report theirs to the broker: see ``BrokerService.stats()``. In ``local[*]`` mode the
    driver's JVM is also the executors', so this counts every connection.
    """
    if is_connect(spark):
        raise LakebaseSparkError(
            "provider_stats reads the driver JVM's counters through py4j, which a Spark Connect session "
            "does not have. Use the broker's counters instead: "
            "lakebase_spark.shared_broker_service().stats() (every JVM, the driver's included, reports "
            "its counters with its token requests)"
        )
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the Spark session has stopped: no JVM to read provider counters from")
    snapshot = jvm.io.lakebase.spark.core.ProviderStats.snapshot()
    return {str(k): int(v) for k, v in snapshot.items()}


def submit_args(driver_jar: str | None = None) -> list[str]:
    """The ``spark-submit`` flags that put the provider and a Postgres JDBC driver on the class path.

    Under ``spark-submit`` the driver JVM starts before the script runs, so :func:`configure` can no
    longer add jars to it: these flags must be on the command line.
    """
    driver = driver_jar or postgres_driver_jar()
    jars = [jar_path(), *([driver] if driver else [])]
    args = ["--jars", ",".join(jars), "--driver-class-path", os.pathsep.join(jars)]
    if driver is None:
        args += ["--packages", POSTGRES_DRIVER_PACKAGE]
    return args
