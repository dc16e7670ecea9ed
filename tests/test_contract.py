"""The facts Python and the JVM share agree on both sides: option keys, the broker protocol (path,
JSON fields, query parameters), counter names, target kinds, fault points, Spark's own option names.

Each side defines them once; this test reads the Java constants from the provider jar itself, in the
shared Spark session's JVM, and compares them with the Python ones.
"""

from __future__ import annotations

import pytest

from lakebase_spark import options as py_options
from lakebase_spark import service, targets
from lakebase_spark.writing import writer

pytestmark = [pytest.mark.spark]

#: (Java class, Java constant, Python value)
SHARED = [
    ("LakebaseOptions", "BROKER_URL", py_options.BROKER_URL),
    ("LakebaseOptions", "BROKER_SECRET", py_options.BROKER_SECRET),
    ("LakebaseOptions", "BROKER_FINGERPRINT", py_options.BROKER_FINGERPRINT),
    ("LakebaseOptions", "BROKER_TIMEOUT_MS", py_options.BROKER_TIMEOUT_MS),
    ("LakebaseOptions", "COLD_START_TIMEOUT_MS", py_options.COLD_START_TIMEOUT_MS),
    ("LakebaseOptions", "CONNECTION_LIMIT_TIMEOUT_MS", py_options.CONNECTION_LIMIT_TIMEOUT_MS),
    ("LakebaseOptions", "ENDPOINT", py_options.ENDPOINT),
    ("LakebaseOptions", "INSTANCE", py_options.INSTANCE),
    ("LakebaseOptions", "PROVIDER_NAME", py_options.PROVIDER_NAME),
    ("LakebaseOptions", "ENDPOINT_PATTERN", targets.ENDPOINT_PATTERN),
    ("LakebaseOptions", "SEGMENT_PATTERN", targets.SEGMENT_PATTERN),
    ("LakebaseOptions", "POSTGRES_DRIVER", py_options.POSTGRES_DRIVER),
    ("BrokerClient", "TOKEN_PATH", service.TOKEN_PATH),
    ("BrokerClient", "TOKEN", service.TOKEN),
    ("BrokerClient", "EXPIRES_IN_MS", service.EXPIRES_IN_MS),
    ("BrokerClient", "REFRESH_IN_MS", service.REFRESH_IN_MS),
    ("BrokerClient", "ERROR", service.ERROR),
    ("BrokerClient", "REFUSED", service.REFUSED),
    ("ProviderStats", "JVM", service.JVM),
    ("WriteOptions", "TABLE", writer.WRITE_TABLE),
    ("WriteOptions", "COLUMNS", writer.WRITE_COLUMNS),
    ("WriteOptions", "WRITE_ID", writer.WRITE_ID),
    ("WriteOptions", "COMMITS", writer.WRITE_COMMITS),
    ("WriteOptions", "FAULT", writer.WRITE_FAULT),
    ("WriteOptions", "FAULT_PARTITIONS", writer.WRITE_FAULT_PARTITIONS),
]


def java_constant(spark, cls: str, name: str) -> str:
    jvm = spark.sparkContext._jvm
    field = jvm.java.lang.Class.forName(f"io.lakebase.spark.{cls}").getDeclaredField(name)
    field.setAccessible(True)
    return str(field.get(None))


@pytest.mark.parametrize(("cls", "name", "python"), SHARED, ids=[f"{c}.{n}" for c, n, _ in SHARED])
def test_option_keys_agree(spark, cls: str, name: str, python: str) -> None:
    assert java_constant(spark, cls, name) == python


def test_the_copy_source_class_exists(spark) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm.java.lang.Class.forName(writer.COPY_SOURCE).getName() == writer.COPY_SOURCE


def test_counter_names_agree(spark) -> None:
    snapshot = spark.sparkContext._jvm.io.lakebase.spark.ProviderStats.snapshot()
    assert tuple(str(k) for k in snapshot.keySet().toArray()) == service.JVM_COUNTERS


def test_fault_points_agree(spark) -> None:
    jvm = spark.sparkContext._jvm
    faults = jvm.java.lang.Class.forName("io.lakebase.spark.WriteOptions$Fault").getEnumConstants()
    names = []
    for fault in faults:
        field = fault.getClass().getDeclaredField("name")
        field.setAccessible(True)
        names.append(str(field.get(fault)))
    documented = writer.WRITE_FAULT_POINTS
    assert tuple(names) == documented


def test_the_provider_leaves_out_every_option_spark_itself_reads(spark) -> None:
    """The provider keeps Spark's own JDBC options (dbtable, numPartitions, ...) out of the driver's
    properties with its own list, not ``JDBCOptions.asConnectionProperties``: that needs a Scala map built
    from Java, which no single jar can do for both Scala 2.12 (Spark 3.5) and 2.13 (Spark 4). This keeps the
    list in step with the Spark it runs on."""
    jvm = spark.sparkContext._jvm
    gateway = spark.sparkContext._gateway
    cls = jvm.java.lang.Class.forName("org.apache.spark.sql.execution.datasources.jdbc.JDBCOptions$")
    module = cls.getField("MODULE$").get(None)
    no_args = gateway.new_array(jvm.java.lang.Object, 0)
    accessor = next(
        m for m in cls.getMethods() if m.getName().endswith("$$jdbcOptionNames") and not m.getParameterCount()
    )
    sparks = {str(name).lower() for name in accessor.invoke(module, no_args).mkString("\n").split("\n")}
    field = jvm.java.lang.Class.forName("io.lakebase.spark.LakebaseOptions").getDeclaredField("SPARK_OPTIONS")
    field.setAccessible(True)
    ours = {str(name) for name in field.get(None).toArray()}
    assert len(sparks) > 20  # the real list was read
    assert sparks <= ours, f"options Spark reads that would reach pgjdbc: {sorted(sparks - ours)}"


def test_target_kinds_agree(spark) -> None:
    from typing import get_args

    from lakebase_spark.targets import Kind

    jvm = spark.sparkContext._jvm
    kinds = jvm.java.lang.Class.forName("io.lakebase.spark.LakebaseTarget$Kind").getEnumConstants()
    params = []
    for kind in kinds:
        field = kind.getClass().getDeclaredField("param")
        field.setAccessible(True)
        params.append(str(field.get(kind)))
    assert tuple(params) == get_args(Kind)
    assert {k: py_options.TARGET_KEYS[k] for k in params} == {
        "endpoint": java_constant(spark, "LakebaseOptions", "ENDPOINT"),
        "instance": java_constant(spark, "LakebaseOptions", "INSTANCE"),
    }
