"""The facts Python and the JVM share agree on both sides: option keys, the broker protocol (path,
JSON fields, query parameters), counter names, target kinds, fault points, Spark's own option names.

Each side defines them once; this test reads the Java constants from the provider jar itself, in the
shared Spark session's JVM, and compares them with the Python ones.
"""

from __future__ import annotations

import pytest

from lakebase_spark import targets
from lakebase_spark.postgres import connection, snapshots
from lakebase_spark.serving import service
from lakebase_spark.spark import copy_columns
from lakebase_spark.spark import options as py_options
from lakebase_spark.sql import catalogs, reads, writes
from lakebase_spark.tokens import broker
from lakebase_spark.writing import jobs as writer
from lakebase_spark.writing import tables, write_ids

pytestmark = [pytest.mark.spark, pytest.mark.e2e]

#: (Java class, Java constant, Python value)
SHARED = [
    ("LakebaseOptions", "BROKER_URL", py_options.BROKER_URL),
    ("LakebaseOptions", "BROKER_SECRET", py_options.BROKER_SECRET),
    ("LakebaseOptions", "BROKER_SECRET_FILE", py_options.BROKER_SECRET_FILE),
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
    ("LakebaseOptions", "SNAPSHOT", snapshots.SNAPSHOT),
    ("LakebaseOptions", "SNAPSHOT_PATTERN", snapshots.SNAPSHOT_PATTERN),
    ("ReadOptions", "TABLE", copy_columns.READ_TABLE),
    ("ReadOptions", "COLUMNS", copy_columns.READ_COLUMNS),
    ("ReadOptions", "PREDICATES", copy_columns.READ_PREDICATES),
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
    ("WriteOptions", "COLUMN_TYPES", writer.WRITE_COLUMN_TYPES),
    ("ColumnTarget", "TYPE", tables.TYPE),
    ("ColumnTarget", "CATEGORY", tables.CATEGORY),
    ("ColumnTarget", "ARRAY", tables.ARRAY),
    ("ColumnTarget", "DELIMITER", tables.DELIMITER),
    ("LoginRetry", "TOO_MANY_CONNECTIONS", connection.CONNECTION_LIMIT_SQLSTATE),
    ("WriteCoordinator", "BEGIN", writes.BEGIN),
    ("WriteCoordinator", "COMMIT", writes.COMMIT),
    ("WriteCoordinator", "ABORT", writes.ABORT),
    ("WriteCoordinator", "OPTIONS", writes.OPTIONS),
    ("ReadCoordinator", "PLAN", reads.PLAN),
    ("ReadCoordinator", "SNAPSHOT", reads.SNAPSHOT),
    ("ReadCoordinator", "RELEASE", reads.RELEASE),
    ("ReadCoordinator", "OPTIONS", reads.OPTIONS),
    ("ReadCoordinator", "UNSUPPORTED", reads.UNSUPPORTED),
]

#: Numbers both sides apply: (Java class, constant, Python value in the Java constant's unit).
NUMBERS = [
    ("WriteOptions", "MAX_WRITE_ID", write_ids.MAX_WRITE_ID),
    ("LakebaseOptions", "DEFAULT_COLD_START_TIMEOUT_MS", connection.COLD_START_TIMEOUT * 1000),
    ("LakebaseOptions", "DEFAULT_CONNECTION_LIMIT_TIMEOUT_MS", connection.CONNECTION_LIMIT_TIMEOUT * 1000),
    ("LoginRetry", "FIRST_DELAY_MS", connection.FIRST_DELAY * 1000),
    ("LoginRetry", "MAX_DELAY_MS", connection.MAX_DELAY * 1000),
    ("TokenCache", "LOGIN_MARGIN_NANOS", broker.LOGIN_MARGIN * 1e9),
    ("TokenCache", "MAX_LOGIN_MARGIN_SHARE", broker.MAX_LOGIN_MARGIN_SHARE),
    ("TokenCache", "FIRST_BACKOFF_MS", broker.FIRST_RETRY_BACKOFF * 1000),
    ("TokenCache", "MAX_BACKOFF_MS", broker.MAX_RETRY_BACKOFF * 1000),
    ("TokenCache", "REFUSAL_HOLD_MS", broker.REFUSAL_HOLD * 1000),
]

#: SQLSTATE lists both login policies classify by: (Java constant of LoginRetry, Python tuple).
SQLSTATES = [
    ("AUTH_SQLSTATES", connection.AUTH_SQLSTATES),
    ("COLD_START_SQLSTATES", connection.STARTING_SQLSTATES),
]


#: The JVM side's packages, by concern (jvm/src/main/java/io/lakebase/spark/<package>/<Class>.java).
PACKAGES = {
    "core": ("LakebaseException", "Log", "ProviderStats"),
    "tokens": ("BrokerClient", "TokenCache", "TokenKey", "LakebaseTarget", "HttpGet", "PinnedTrustManager"),
    "connection": ("LakebaseOptions", "LoginRetry", "Logins", "SessionFiles", "SharedSnapshot", "PgUrl"),
    "write": ("WriteOptions", "CopyTextEncoder", "ColumnTarget"),
    "read": ("ReadOptions", "PgBinaryType", "BinaryRowDecoder"),
    "catalog": ("WriteCoordinator", "ReadCoordinator"),
}


def java_class(cls: str) -> str:
    """The full name of a class of the jar, from its simple name (``WriteOptions$Fault`` too)."""
    outer = cls.split("$")[0]
    package = next((p for p, names in PACKAGES.items() if outer in names), None)
    return f"io.lakebase.spark.{package}.{cls}" if package else f"io.lakebase.spark.{cls}"


def java_constant(spark, cls: str, name: str) -> str:
    jvm = spark.sparkContext._jvm
    field = jvm.java.lang.Class.forName(java_class(cls)).getDeclaredField(name)
    field.setAccessible(True)
    return str(field.get(None))


@pytest.mark.parametrize(("cls", "name", "python"), SHARED, ids=[f"{c}.{n}" for c, n, _ in SHARED])
def test_option_keys_agree(spark, cls: str, name: str, python: str) -> None:
    assert java_constant(spark, cls, name) == python


@pytest.mark.parametrize(("cls", "name", "python"), NUMBERS, ids=[f"{c}.{n}" for c, n, _ in NUMBERS])
def test_numbers_agree(spark, cls: str, name: str, python: float) -> None:
    assert float(java_constant(spark, cls, name)) == float(python)


@pytest.mark.parametrize(("name", "python"), SQLSTATES, ids=[n for n, _ in SQLSTATES])
def test_sqlstate_lists_agree(spark, name: str, python: tuple[str, ...]) -> None:
    jvm = spark.sparkContext._jvm
    field = jvm.java.lang.Class.forName(java_class("LoginRetry")).getDeclaredField(name)
    field.setAccessible(True)
    assert tuple(str(v) for v in field.get(None)) == python


#: Ids each side judges: the limits, characters beyond the basic plane (one character, two UTF-16 units), NUL.
WRITE_IDS = [
    "a",
    "x" * 512,
    "x" * 513,
    "\U0001f600" * 300,
    "\U0001f600" * 512,
    "\U0001f600" * 513,
    "a\x00b",
    "",
]


@pytest.mark.parametrize("write_id", WRITE_IDS, ids=lambda w: f"{len(w)}:{w[:3]!r}")
def test_the_write_id_rule_is_the_same(spark, write_id: str) -> None:
    jvm, gateway = spark.sparkContext._jvm, spark.sparkContext._gateway
    parameters = gateway.new_array(jvm.java.lang.Class, 1)
    parameters[0] = jvm.java.lang.Class.forName("java.lang.String")
    method = jvm.java.lang.Class.forName(java_class("WriteOptions")).getDeclaredMethod(
        "writeIdProblem", parameters
    )
    method.setAccessible(True)
    arguments = gateway.new_array(jvm.java.lang.Object, 1)
    arguments[0] = write_id
    java = method.invoke(None, arguments)
    assert (None if java is None else str(java)) == write_ids.write_id_problem(write_id)


def test_the_copy_source_class_exists(spark) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm.java.lang.Class.forName(writer.COPY_SOURCE).getName() == writer.COPY_SOURCE


def test_the_catalog_class_exists(spark) -> None:
    jvm = spark.sparkContext._jvm
    assert jvm.java.lang.Class.forName(catalogs.CATALOG_CLASS).getName() == catalogs.CATALOG_CLASS


def test_the_copy_reader_knows_every_decoder_the_planner_names(spark) -> None:
    jvm = spark.sparkContext._jvm
    assert (
        jvm.java.lang.Class.forName(copy_columns.COPY_READ_SOURCE).getName() == copy_columns.COPY_READ_SOURCE
    )
    constants = jvm.java.lang.Class.forName(java_class("PgBinaryType")).getEnumConstants()
    java = {str(c.name()).lower() for c in constants}
    assert {decoder for decoder, _ in copy_columns.BINARY_TYPES.values()} == java


def enum_fields(spark, enum: str, field: str) -> tuple[str, ...]:
    """The private ``field`` of each constant of the jar's enum ``enum``, in order."""
    constants = spark.sparkContext._jvm.java.lang.Class.forName(java_class(enum)).getEnumConstants()
    values = []
    for constant in constants:
        declared = constant.getClass().getDeclaredField(field)
        declared.setAccessible(True)
        values.append(str(declared.get(constant)))
    return tuple(values)


def test_counter_names_agree(spark) -> None:
    snapshot = spark.sparkContext._jvm.io.lakebase.spark.core.ProviderStats.snapshot()
    assert tuple(str(k) for k in snapshot.keySet().toArray()) == service.JVM_COUNTERS


def test_fault_points_agree(spark) -> None:
    assert enum_fields(spark, "WriteOptions$Fault", "name") == writer.WRITE_FAULT_POINTS


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
    field = jvm.java.lang.Class.forName(java_class("LakebaseOptions")).getDeclaredField("SPARK_OPTIONS")
    field.setAccessible(True)
    ours = {str(name) for name in field.get(None).toArray()}
    assert len(sparks) > 20  # the real list was read
    assert sparks <= ours, f"options Spark reads that would reach pgjdbc: {sorted(sparks - ours)}"


def test_target_kinds_agree(spark) -> None:
    from typing import get_args

    from lakebase_spark.targets import Kind

    params = enum_fields(spark, "LakebaseTarget$Kind", "param")
    assert params == get_args(Kind)
    assert {k: py_options.TARGET_KEYS[k] for k in params} == {
        "endpoint": java_constant(spark, "LakebaseOptions", "ENDPOINT"),
        "instance": java_constant(spark, "LakebaseOptions", "INSTANCE"),
    }


def test_shipped_secret_files_match_the_providers_name_rule(spark) -> None:
    import re
    import uuid

    from lakebase_spark.spark._session_files import FILE_PREFIX

    pattern = java_constant(spark, "SessionFiles", "NAME_PATTERN")
    assert re.fullmatch(pattern, f"{FILE_PREFIX}{uuid.uuid4().hex}")
    assert not re.fullmatch(pattern, "../etc/passwd")
