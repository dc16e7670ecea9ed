"""The JVM provider inside Spark: selection (canHandle), TLS enforcement, errors, and no token leaks."""

from __future__ import annotations

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException

from lakebase_spark import BrokerService, LakebaseOptions, TokenBroker, lakebase_options

from ..conftest import DATABASE, ENDPOINT

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]


def scala_options(spark, options: dict[str, str]):
    """The same case-insensitive option map Spark hands a provider (``JDBCOptions.parameters``)."""
    jvm = spark._jvm
    java_map = jvm.java.util.HashMap()
    for k, v in {"dbtable": "t", "url": "jdbc:postgresql://h/db", **options}.items():
        java_map.put(k, v)
    scala_map = jvm.org.apache.spark.api.python.PythonUtils.toScalaMap(java_map)
    return jvm.org.apache.spark.sql.execution.datasources.jdbc.JDBCOptions(scala_map).parameters()


@pytest.fixture(scope="module")
def provider(spark):
    # configure() put the jar on the driver's class path, where Spark's ServiceLoader finds it too.
    return spark._jvm.io.lakebase.spark.LakebaseConnectionProvider()


def test_provider_identity(provider) -> None:
    assert provider.name() == "lakebase"
    assert provider.toString() == "lakebase"


def test_can_handle_only_postgres_with_lakebase_options(spark, provider, opts) -> None:
    postgres = spark._jvm.org.postgresql.Driver()
    # Whichever Derby driver this Spark bundles (its class moved between Derby 10.14 and 10.16).
    derby = spark._jvm.java.sql.DriverManager.getDriver("jdbc:derby:memory:probe")
    assert "postgresql" not in derby.getClass().getName()
    wrapped = spark._jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverWrapper(postgres)
    plain = {k: v for k, v in opts.items() if not k.startswith("lakebase.") and k != "connectionProvider"}
    assert provider.canHandle(postgres, scala_options(spark, dict(opts)))
    assert provider.canHandle(wrapped, scala_options(spark, dict(opts)))
    assert provider.canHandle(postgres, scala_options(spark, {k.upper(): v for k, v in opts.items()}))
    assert not provider.canHandle(postgres, scala_options(spark, plain))
    assert not provider.canHandle(derby, scala_options(spark, dict(opts)))
    no_target = {k: v for k, v in opts.items() if k not in ("lakebase.endpoint", "connectionProvider")}
    assert not provider.canHandle(postgres, scala_options(spark, no_target))
    # Asked for by name but missing its options: taken, so getConnection can say what is missing.
    assert provider.canHandle(postgres, scala_options(spark, dict(plain, connectionProvider="lakebase")))


def test_missing_lakebase_options_are_named(spark, opts, orders_table) -> None:
    partial = {k: v for k, v in opts.items() if k != "lakebase.broker.secret"}
    assert "option lakebase.broker.secret is missing" in read_error(spark, partial, orders_table)


def test_plain_jdbc_keeps_working_in_the_same_session(spark, tmp_path) -> None:
    """Another driver, no Lakebase options: Spark's basic provider still serves it."""
    url = f"jdbc:derby:{tmp_path / 'derby'};create=true"
    df = spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string")
    df.write.format("jdbc").option("url", url).option("dbtable", "t").mode("overwrite").save()
    back = spark.read.format("jdbc").option("url", url).option("dbtable", "t").load()
    assert sorted(back.collect()) == sorted(df.collect())


def test_plain_postgres_jdbc_with_a_static_password_uses_basic(
    spark, opts, broker_service, orders_table
) -> None:
    # A newly minted token: the cached one may be one an earlier test revoked (basic cannot ask again).
    token = broker_service.broker.credential(endpoint=opts["lakebase.endpoint"], force=True).token.reveal()
    plain = {k: v for k, v in opts.items() if not k.startswith("lakebase.") and k != "connectionProvider"}
    df = (
        spark.read.format("jdbc")
        .options(**plain)
        .option("password", token)
        .option("dbtable", orders_table)
        .load()
    )
    assert df.count() == 3


@pytest.fixture
def orders_table(admin, emulator):
    from psycopg import sql

    admin.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emulator.user_name)))
    admin.execute("DROP TABLE IF EXISTS public.small")
    admin.execute("CREATE TABLE public.small AS SELECT g AS id FROM generate_series(1, 3) g")
    return "public.small"


def read_error(spark, options: dict[str, str], table: str) -> str:
    with pytest.raises((Py4JJavaError, PySparkException)) as info:
        spark.read.format("jdbc").options(**options).option("dbtable", table).load().collect()
    return str(info.value)


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer", "DISABLE", "Prefer"])
def test_weak_sslmode_is_refused(spark, opts, orders_table, mode: str) -> None:
    weak = dict(opts, url=opts["url"].replace("sslmode=require", f"sslmode={mode}"))
    message = read_error(spark, weak, orders_table)
    assert f"sslmode={mode} in the url is not allowed: Lakebase requires TLS" in message
    weak_option = dict(opts, sslmode=mode)
    message = read_error(spark, weak_option, orders_table)
    assert f"sslmode={mode}" in message
    assert "is not allowed: Lakebase requires TLS" in message


def test_missing_sslmode_is_forced_to_require(spark, opts, orders_table, admin) -> None:
    no_mode = dict(opts, url=opts["url"].replace("?sslmode=require", ""))
    df = spark.read.format("jdbc").options(**no_mode).option("dbtable", orders_table).load()
    assert df.count() == 3  # the emulator refuses non-TLS logins, so this went over TLS


def test_wrong_broker_secret_is_a_clear_error(spark, opts, orders_table) -> None:
    secret = "wrong-" + "x" * 20
    message = read_error(spark, dict(opts, **{"lakebase.broker.secret": secret}), orders_table)
    assert "rejected the broker secret (HTTP 401)" in message
    assert secret not in message
    assert opts["lakebase.broker.secret"] not in message


def test_unreachable_broker_is_a_clear_error(spark, opts, orders_table) -> None:
    message = read_error(spark, dict(opts, **{"lakebase.broker.url": "http://127.0.0.1:9"}), orders_table)
    assert "unreachable" in message


def test_plain_http_broker_off_loopback_is_refused(spark, opts, orders_table) -> None:
    message = read_error(
        spark, dict(opts, **{"lakebase.broker.url": "http://10.255.255.1:8080"}), orders_table
    )
    assert "TLS" in message


def test_token_never_leaks(spark, spark_logs, opts, orders_table, broker_service, capfd, caplog) -> None:
    # A broker of its own: its URL is new to the JVM's token cache, so the provider really asks it (and
    # logs that it did) during this test.
    fresh = BrokerService(TokenBroker(broker_service.broker.workspace)).start()
    fresh_opts = lakebase_options(ENDPOINT, database=DATABASE, broker=fresh)
    spark.sparkContext.setLogLevel("DEBUG")
    try:
        df = spark.read.format("jdbc").options(**fresh_opts).option("dbtable", orders_table).load()
        df.collect()
        plans = [
            df._jdf.queryExecution().toString(),
            df._jdf.queryExecution().explainString(
                getattr(spark._jvm, "org.apache.spark.sql.execution.ExtendedMode$").__getattr__("MODULE$")
            ),
        ]
        df.write.format("jdbc").options(**opts).option("dbtable", "public.small_copy").mode(
            "overwrite"
        ).save()
        failure = read_error(spark, dict(opts, url=opts["url"].replace("require", "disable")), orders_table)
    finally:
        spark.sparkContext.setLogLevel("WARN")
    out, err = capfd.readouterr()
    jvm_log = (spark_logs / "spark.log").read_text(errors="replace")
    assert "JDBC" in jvm_log  # DEBUG logging of the JDBC path really was captured
    # ... and the provider's own lines reach Spark's log (slf4j), so this search covers them too.
    assert f"DEBUG io.lakebase.spark: broker {fresh.url} served a token" in jvm_log
    assert "JDBCRelation" in plans[0]
    for service, options in ((broker_service, opts), (fresh, fresh_opts)):
        token = service.broker.credential(endpoint=ENDPOINT).token.reveal()
        secret = options["lakebase.broker.secret"]
        for text in [*plans, out, err, caplog.text, failure, repr(LakebaseOptions(options)), jvm_log]:
            assert token not in text
            assert secret not in text
    fresh.stop()


@pytest.mark.parametrize("mode", ["REQUIRE", "Require"])
def test_tls_sslmodes_are_accepted_in_any_case(spark, opts, orders_table, mode: str) -> None:
    """pgjdbc reads sslmode case-insensitively, and so does the provider's TLS check."""
    tls = dict(opts, sslmode=mode)
    assert spark.read.format("jdbc").options(**tls).option("dbtable", orders_table).load().count() == 3


def test_a_static_password_is_refused_not_ignored(spark, opts, orders_table) -> None:
    message = read_error(spark, dict(opts, password="hunter2-static"), orders_table)
    assert "option password is set, but connectionProvider=lakebase" in message
    assert "hunter2-static" not in message
