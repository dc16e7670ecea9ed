"""The benchmark's world: the emulator (real Postgres over TLS), a token broker, Spark, and ways in.

Every side of every comparison talks to the same Postgres server over the same TLS; only what is
compared differs (the connection provider, an option, the client).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

import lakebase_spark
from lakebase_spark import BrokerService, TokenBroker, lakebase_options

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import SparkSession

    from lakebase_spark.testing import LakebaseEmulator

__all__ = [
    "DATABASE",
    "ENDPOINT",
    "SHARDS",
    "BenchEnv",
    "plain_options",
    "say",
    "settle",
    "spark_builder",
]

ENDPOINT = "projects/bench/branches/main/endpoints/primary"
DATABASE = "bench"
SHARDS = ("shard_a", "shard_b", "shard_c")
#: Keys of ``lakebase_options`` that exist only for our provider.
PROVIDER_KEYS = ("connectionProvider",)

# Spark's INFO logging on stderr would bury the progress lines: errors only, in every Spark JVM.
_LOG4J = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.stderr.type = Console
appender.stderr.name = stderr
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n
"""


def say(text: str) -> None:
    """A progress line (stderr: stdout of a child process carries its JSON result)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def spark_builder(app: str, *, ui: bool = False) -> Any:
    """A local[2] session builder with the provider jar and driver on the class path, quiet logs.

    ``ui`` keeps the Spark UI (bound to loopback) for its REST API: case 4 reads task times there.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    log_conf = Path(tempfile.gettempdir()) / "lakebase-bench-log4j2.properties"
    log_conf.write_text(_LOG4J)
    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app)
        .config("spark.ui.enabled", str(ui).lower())
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "16")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{log_conf}")
    )
    return lakebase_spark.configure(builder)


def settle(spark: SparkSession) -> None:
    """A full GC in the Spark JVM (driver = executor in local mode), outside the clock."""
    jvm: Any = spark.sparkContext._jvm
    jvm.java.lang.System.gc()


def plain_options(options: dict[str, str], token: str) -> dict[str, str]:
    """What a user of Spark's ``basic`` provider passes: the same options, a static password."""
    plain = {k: v for k, v in options.items() if not k.startswith("lakebase.") and k not in PROVIDER_KEYS}
    plain["password"] = token
    return plain


@dataclass
class BenchEnv:
    """A running emulator with the bench databases, a broker service, and the shared Spark session."""

    emulator: LakebaseEmulator
    workspace: WorkspaceClient
    broker: BrokerService
    spark: SparkSession
    _token: str | None = field(default=None, repr=False)

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[BenchEnv]:
        from lakebase_spark.testing import LakebaseEmulator

        with LakebaseEmulator(databases=(DATABASE, *SHARDS)) as emulator:
            emulator.create_endpoint(ENDPOINT)
            workspace = emulator.workspace_client("pat")
            with BrokerService(TokenBroker(workspace)) as broker:
                spark = spark_builder("lakebase-spark bench", ui=True).getOrCreate()
                try:
                    yield cls(emulator, workspace, broker, spark)
                finally:
                    spark.stop()

    def settle(self) -> None:
        """Collect the Spark JVM's garbage before a timed run, so no side pays for the previous one's."""
        settle(self.spark)

    # -- options ----------------------------------------------------------------------------------

    def options(self, database: str = DATABASE, *, broker: BrokerService | None = None) -> dict[str, str]:
        """``lakebase_options`` for a bench database: our provider and our defaults."""
        return dict(lakebase_options(ENDPOINT, database=database, broker=broker or self.broker))

    def token(self) -> str:
        """A database token minted once and reused: the static password of the baselines."""
        if self._token is None:
            self._token = self.broker.broker.credential(endpoint=ENDPOINT).token.reveal()
        return self._token

    def basic_options(self, database: str = DATABASE) -> dict[str, str]:
        return plain_options(self.options(database), self.token())

    # -- Postgres directly ------------------------------------------------------------------------

    @contextmanager
    def admin(self, database: str = DATABASE) -> Iterator[psycopg.Connection[Any]]:
        """The superuser over the Unix socket, acting as the emulator's user (who owns the tables)."""
        with psycopg.connect(self.emulator.admin_conninfo(database), autocommit=True) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.emulator.user_name)))
            yield conn

    def checkpoint(self) -> None:
        """Flush Postgres' dirty buffers now (as the superuser), so no checkpoint lands in a timed write."""
        with psycopg.connect(self.emulator.admin_conninfo(DATABASE), autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def psycopg_conninfo(self, database: str = DATABASE) -> str:
        """The user's login over TLS, without a password (give the token separately)."""
        host, port = self.emulator.postgres_host.rsplit(":", 1)
        return make_conninfo(
            host=host, port=port, dbname=database, user=self.emulator.user_name, sslmode="require"
        )

    def psql(self, *commands: str, database: str = DATABASE) -> float:
        """Run ``psql -c <command>`` once per command, all at once, as the user over TLS with the
        token as PGPASSWORD; return the wall time until the last one finishes."""
        psql = shutil.which("psql")
        if psql is None:
            raise FileNotFoundError(
                "psql is not on PATH: install the PostgreSQL client (Debian: postgresql-client)"
            )
        conninfo = self.psycopg_conninfo(database)
        env = dict(os.environ, PGPASSWORD=self.token())
        started = time.perf_counter()
        running = [
            subprocess.Popen(  # noqa: S603 - our own argv, no shell
                [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", conninfo, "-c", command],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in commands
        ]
        stderrs = [p.communicate()[1] for p in running]
        elapsed = time.perf_counter() - started
        for command, process, stderr in zip(commands, running, stderrs, strict=True):
            if process.returncode != 0:
                raise RuntimeError(f"psql {command!r} failed (exit {process.returncode}): {stderr[-2000:]}")
        return elapsed

    def child_env(self) -> dict[str, str]:
        """Environment for a ``python -m bench.readjob`` process: where the workspace is, and its PAT."""
        return dict(
            os.environ,
            PYSPARK_PYTHON=sys.executable,
            LAKEBASE_BENCH_HOST=self.emulator.host,
            LAKEBASE_BENCH_PAT=self.emulator.pat,
        )
