"""Session helper and the packaged jar: what configure() puts on the classpath."""

from __future__ import annotations

import zipfile

import pytest
from pyspark.sql import SparkSession

import lakebase_spark
from lakebase_spark import JarNotFoundError
from lakebase_spark.spark.classpath import DRIVER_JAR_ENV, POSTGRES_DRIVER_PACKAGE


def builder(**preset: str) -> SparkSession.Builder:
    """A real ``SparkSession.Builder`` (making one starts no JVM) with the user's own settings."""
    made = SparkSession.Builder()
    for key, value in preset.items():
        made = made.config(key, value)
    return made


def settings(made: SparkSession.Builder) -> dict[str, str]:
    """What the builder will start Spark with; PySpark has no public reader, configure() uses the same."""
    return dict(made._options)


def test_the_jar_holds_the_provider_and_its_service_file() -> None:
    with zipfile.ZipFile(lakebase_spark.jar_path()) as jar:
        names = set(jar.namelist())
        service = jar.read("META-INF/services/org.apache.spark.sql.jdbc.JdbcConnectionProvider").decode()
    assert "io/lakebase/spark/LakebaseConnectionProvider.class" in names
    assert service.strip() == "io.lakebase.spark.LakebaseConnectionProvider"


def test_configure_adds_jars_and_keeps_the_users(monkeypatch, tmp_path) -> None:
    driver = tmp_path / "postgresql-42.jar"
    driver.write_bytes(b"")
    monkeypatch.setenv(DRIVER_JAR_ENV, str(driver))
    mine = builder(**{"spark.jars": "/opt/mine.jar"})
    assert lakebase_spark.configure(mine) is mine
    jars = settings(mine)["spark.jars"].split(",")
    assert jars == ["/opt/mine.jar", lakebase_spark.jar_path(), str(driver)]
    assert str(driver) in settings(mine)["spark.driver.extraClassPath"]
    assert "spark.jars.packages" not in settings(mine)


def test_configure_falls_back_to_the_maven_coordinate(monkeypatch) -> None:
    monkeypatch.delenv(DRIVER_JAR_ENV, raising=False)
    monkeypatch.setattr(lakebase_spark.spark.classpath, "SYSTEM_DRIVER_JARS", ())
    configured = lakebase_spark.configure(builder())
    assert settings(configured)["spark.jars.packages"] == POSTGRES_DRIVER_PACKAGE


def test_a_missing_named_driver_jar_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(DRIVER_JAR_ENV, "/nowhere/postgresql.jar")
    with pytest.raises(JarNotFoundError, match="names no file"):
        lakebase_spark.configure(builder())
