"""pytest plugin (registered as ``lakebase_spark`` through the ``pytest11`` entry point): fixtures to
test your own Spark jobs against a local Lakebase emulator, with no workspace.

- ``lakebase_emulator``: a running :class:`LakebaseEmulator` (real Postgres, the workspace API) with
  the endpoint ``lakebase_endpoint`` created; one per test session.
- ``lakebase_endpoint``: that endpoint's name, for ``lakebase_options(...)`` or ``write(...)``.
- ``lakebase_env``: ``DATABRICKS_HOST`` and ``DATABRICKS_TOKEN`` point at the emulator for the session,
  so code that builds ``WorkspaceClient()`` from the environment (as jobs do) talks to it.
- ``lakebase_spark_session``: a ``local[2]`` SparkSession with the provider and the Postgres driver
  (``lakebase_spark.configure``), stopped at the end together with the broker it used.
- ``lakebase_admin``: a psycopg connection as the Postgres superuser, to seed tables and check results.

Every fixture is session-scoped and started only when a test asks for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from .emulator import LakebaseEmulator

# Every pytest run in an environment with lakebase-spark loads this module: it imports nothing heavy
# (the emulator, Spark, psycopg) until a test asks for a fixture.


@pytest.fixture(scope="session")
def lakebase_endpoint() -> str:
    """The emulated Autoscaling endpoint's name."""
    from .emulator import DEFAULT_ENDPOINT

    return DEFAULT_ENDPOINT


@pytest.fixture(scope="session")
def lakebase_emulator(lakebase_endpoint: str) -> Iterator[LakebaseEmulator]:
    """A local Lakebase: real Postgres (TLS, token logins) and the workspace API the SDK talks to."""
    from .emulator import LakebaseEmulator

    with LakebaseEmulator() as emulator:
        emulator.create_endpoint(lakebase_endpoint)
        yield emulator


@pytest.fixture(scope="session")
def lakebase_env(lakebase_emulator: LakebaseEmulator) -> Iterator[dict[str, str]]:
    """``DATABRICKS_HOST``/``DATABRICKS_TOKEN`` for the emulator, set for the session, then restored."""
    values = {"DATABRICKS_HOST": lakebase_emulator.host, "DATABRICKS_TOKEN": lakebase_emulator.pat}
    saved = {name: os.environ.get(name) for name in (*values, "DATABRICKS_CONFIG_PROFILE")}
    os.environ.pop("DATABRICKS_CONFIG_PROFILE", None)  # a profile would win over the variables
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def local_spark_builder(
    app: str = "lakebase-spark pytest", conf: Mapping[str, str] | None = None, *, master: str = "local[2]"
) -> Any:
    """A ``SparkSession.Builder`` on ``master`` (``local[2]``; ``local-cluster[2,1,1024]`` for executors in
    JVMs of their own) set up for lakebase-spark (its jars, no UI, 4 shuffle partitions); ``conf`` adds or
    overrides settings. The session fixture uses it; so can your own fixtures and jobs."""
    import sys

    from pyspark.sql import SparkSession

    import lakebase_spark

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName(app)
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        **(conf or {}),
    }
    for key, value in settings.items():
        builder = builder.config(key, value)
    return lakebase_spark.configure(builder)


@pytest.fixture(scope="session")
def lakebase_spark_session(lakebase_env: dict[str, str]) -> Iterator[SparkSession]:
    """A ``local[2]`` SparkSession set up for lakebase-spark, talking to the emulator."""
    import lakebase_spark

    spark = local_spark_builder().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        yield spark
    finally:
        lakebase_spark.stop_shared_broker_services()
        spark.stop()


@pytest.fixture(scope="session")
def lakebase_admin(lakebase_emulator: LakebaseEmulator) -> Iterator[Any]:
    """A psycopg connection (autocommit) to ``databricks_postgres`` as the Postgres superuser."""
    import psycopg

    with psycopg.connect(lakebase_emulator.admin_conninfo(), autocommit=True) as conn:
        yield conn
