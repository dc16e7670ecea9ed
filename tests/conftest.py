"""Session-scoped fixtures: one emulator (real Postgres + workspace API), one broker, one Spark session.

A Spark session takes ~15 s to start, so every Spark test shares one (``local[2]``); the tests that
need executors in separate JVMs start their own ``local-cluster`` job in a subprocess.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lakebase_spark import BrokerService, TokenBroker, lakebase_options
from lakebase_spark.testing import LakebaseEmulator

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import SparkSession

ENDPOINT = "projects/test/branches/main/endpoints/primary"
DATABASE = "lakebase_test"


@pytest.fixture(scope="session")
def emulator() -> Iterator[LakebaseEmulator]:
    with LakebaseEmulator(databases=("databricks_postgres", DATABASE)) as emu:
        emu.create_endpoint(ENDPOINT)
        yield emu


@pytest.fixture(scope="session")
def workspace(emulator: LakebaseEmulator) -> WorkspaceClient:
    return emulator.workspace_client("pat")


@pytest.fixture(scope="session")
def broker_service(workspace: WorkspaceClient) -> Iterator[BrokerService]:
    with BrokerService(TokenBroker(workspace)) as service:
        yield service


@pytest.fixture(scope="session")
def opts(broker_service: BrokerService) -> dict[str, str]:
    return lakebase_options(ENDPOINT, database=DATABASE, broker=broker_service)


@pytest.fixture(scope="session")
def spark_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the Spark JVM writes its log (log4j2), so tests can search them for leaks."""
    folder = tmp_path_factory.mktemp("spark-logs")
    (folder / "log4j2.properties").write_text(
        "rootLogger.level = info\n"
        "rootLogger.appenderRef.file.ref = file\n"
        "appender.file.type = File\n"
        "appender.file.name = file\n"
        f"appender.file.fileName = {folder / 'spark.log'}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = %d %p %c: %m%n%ex\n"
    )
    return folder


@pytest.fixture(scope="session")
def spark(spark_logs: Path) -> Iterator[SparkSession]:
    from lakebase_spark.testing.pytest_plugin import local_spark_builder

    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{spark_logs}/log4j2.properties",
    }
    session = local_spark_builder("lakebase-spark tests", conf).getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    yield session
    session.stop()


@pytest.fixture
def admin(emulator: LakebaseEmulator) -> Iterator[object]:
    """A psycopg connection as the emulator's superuser, for setting up and checking tables."""
    import psycopg

    with psycopg.connect(emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
        yield conn


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog
