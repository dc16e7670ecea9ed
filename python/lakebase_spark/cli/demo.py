"""The main job on the embedded default: read a Lakebase table through Spark, write one back.

Runs against the local Lakebase emulator (a real PostgreSQL server behind a local workspace API),
so it needs no Databricks account: ``python -m lakebase_spark.cli.demo``. Against a real workspace the
job is the same; only ``lakebase_options`` gets a real endpoint and ``WorkspaceClient()`` its usual
authentication.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame, SparkSession

    from lakebase_spark.testing import LakebaseEmulator

ENDPOINT = "projects/demo/branches/main/endpoints/primary"
DATABASE = "databricks_postgres"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakebase_spark.cli.demo", description=__doc__)
    parser.add_argument("--master", default="local[2]", help="Spark master (default: local[2])")
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the demo orders table")
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="emulator token lifetime, seconds")
    parser.add_argument(
        "--verbose", action="store_true", help="show Spark's own start-up and log output here"
    )
    args = parser.parse_args(argv)

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    import lakebase_spark
    from lakebase_spark.testing import LakebaseEmulator

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with LakebaseEmulator(databases=(DATABASE,), token_ttl=args.token_ttl) as emu:
        host = emu.create_endpoint(ENDPOINT)
        say(f"emulator: workspace {emu.host}, endpoint {ENDPOINT} -> Postgres {host} (TLS only)")
        _seed_orders(emu, args.rows)
        say(f"seeded public.orders with {args.rows:,} rows")

        builder = SparkSession.builder.master(args.master).appName("lakebase-spark demo")
        builder = builder.config("spark.sql.shuffle.partitions", "4")  # a small job: no 200 tiny writes
        builder = builder.config("spark.ui.showConsoleProgress", "false")
        log_file = None
        if not args.verbose:
            builder, log_file = _quiet(builder, args.master)
        say(f"starting Spark: master {args.master} ({_describe(args.master)})")
        with _stderr_muted(not args.verbose):  # the JVM's own start-up lines; its log goes to log_file
            spark = lakebase_spark.configure(builder).getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        summary: list[tuple[str, str]] = [
            ("spark", f"pyspark {spark.version}, master {args.master} ({_describe(args.master)})")
        ]
        try:
            workspace = emu.workspace_client("pat")
            opts = lakebase_spark.lakebase_options(ENDPOINT, database=DATABASE, workspace_client=workspace)
            say(f"options (the secret is masked): {opts}")

            started = time.perf_counter()
            orders = (
                spark.read.format("jdbc")
                .options(**opts)
                .option("dbtable", "public.orders")
                .option("partitionColumn", "id")
                .option("lowerBound", "1")
                .option("upperBound", str(args.rows + 1))
                .option("numPartitions", "4")
                .load()
            )
            totals = orders.groupBy("customer").agg(
                F.count("*").alias("orders"), F.sum("amount").alias("revenue")
            )
            # The COPY writer: one COPY per partition, exactly once; overwrite swaps in one transaction.
            lakebase_spark.write(
                totals,
                "public.customer_totals",
                mode="overwrite",
                endpoint=ENDPOINT,
                database=DATABASE,
                workspace_client=workspace,
            )
            back = (
                spark.read.format("jdbc").options(**opts).option("dbtable", "public.customer_totals").load()
            )
            elapsed = time.perf_counter() - started
            top = back.orderBy(F.desc("revenue")).first()
            summary.append(
                ("read", f"{orders.count():,} orders in {orders.rdd.getNumPartitions()} partitions")
            )
            summary.append(
                (
                    "wrote",
                    f"public.customer_totals: {back.count()} customers (COPY, exactly once); top: "
                    f"{top.customer if top else '-'} {top.revenue if top else 0:,.2f}",
                )
            )
            # The same database as a Spark SQL catalog: CTAS writes by COPY, SELECT reads by COPY.
            lakebase_spark.catalog(spark, "lb", ENDPOINT, database=DATABASE, workspace_client=workspace)
            spark.sql(
                "CREATE TABLE lb.public.top_customers AS "
                "SELECT * FROM lb.public.customer_totals ORDER BY revenue DESC LIMIT 10"
            )
            best = spark.sql("SELECT count(*) AS n, max(revenue) AS top FROM lb.public.top_customers").first()
            summary.append(
                (
                    "sql",
                    f"catalog lb: CREATE TABLE lb.public.top_customers AS SELECT ... -> {best.n} rows "
                    f"(top {best.top:,.2f})"
                    if best
                    else "catalog lb: no rows",
                )
            )
            summary += _sharded(spark, emu, workspace, orders, args.rows)

            service = lakebase_spark.shared_broker_service(workspace)
            summary.append(
                (
                    "credentials",
                    f"{service.broker.stats.mints} minted, {service.tokens_served} served to JVMs, "
                    f"{emu.tokens.stats.logins_ok} Postgres logins with them ({elapsed:.1f} s end to end)",
                )
            )
        finally:
            spark.stop()
            lakebase_spark.stop_shared_broker_services()
    if log_file is not None:
        summary.append(("spark log", f"{log_file} (--verbose shows it here)"))
    width = max(len(name) for name, _ in summary)
    print("\nlakebase-spark demo: summary", flush=True)
    for name, value in summary:
        print(f"  {name:<{width}}  {value}", flush=True)
    return 0


def _describe(master: str) -> str:
    if master.startswith("local-cluster"):
        return "executors in JVMs of their own, fetching tokens from the broker"
    if master.startswith("local"):
        return "driver and executors in one JVM"
    return "a cluster"


_LOG4J = """rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d %p %c: %m%n%ex
"""


def _quiet(builder: SparkSession.Builder, master: str) -> tuple[SparkSession.Builder, Path]:
    """Spark's log to a file instead of the terminal; loopback addresses for a local master."""
    folder = Path(tempfile.mkdtemp(prefix="lakebase-spark-demo-"))
    log, conf = folder / "spark.log", folder / "log4j2.properties"
    conf.write_text(_LOG4J.format(log=log))
    option = f"-Dlog4j2.configurationFile=file:{conf}"
    builder = builder.config("spark.driver.extraJavaOptions", option)
    builder = builder.config("spark.executor.extraJavaOptions", option)
    if master.startswith("local"):  # else Spark warns that the hostname resolves to loopback
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"pyspark\.")
    return builder, log


@contextlib.contextmanager
def _stderr_muted(mute: bool) -> Iterator[None]:
    """Point fd 2 at /dev/null while the JVM starts (it inherits it: its log4j output goes to a file)."""
    if not mute:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _sharded(
    spark: SparkSession, emu: LakebaseEmulator, workspace: WorkspaceClient, orders: DataFrame, rows: int
) -> list[tuple[str, str]]:
    """Spread the orders over three shard databases by id range, then read them back as one."""
    from pyspark.sql import functions as F

    from lakebase_spark import shared_broker_service
    from lakebase_spark.sharding import RangeShardMap, Shard, plan_sharded_read, read_sharded, write_sharded

    shard_map = RangeShardMap("orders_by_id", "bigint")
    for name in ("shard_eu", "shard_us", "shard_apac"):
        emu.create_database(name)
        shard_map.add_shard(Shard(name, database=name, endpoint=ENDPOINT))
    shard_map.add_range(1, rows // 5, "shard_eu")
    shard_map.add_range(rows // 5, rows * 7 // 10, "shard_us")
    shard_map.add_range(rows * 7 // 10, None, "shard_apac")
    broker = shared_broker_service(workspace)

    written = write_sharded(
        orders, shard_map, table="public.orders", key="id", mode="overwrite", broker=broker
    )
    sharded = read_sharded(
        spark, shard_map, table="public.orders", key="id", partitions=6, shard_column="shard", broker=broker
    )
    sizes = sorted(row["count"] for row in sharded.groupBy(F.spark_partition_id()).count().collect())
    window = (rows // 4, rows // 2)
    plan = plan_sharded_read(
        shard_map, table="public.orders", key="id", key_range=window, partitions=2, broker=broker
    )
    return [
        ("sharded write", f"{written.rows}"),
        (
            "sharded read",
            f"{sharded.count():,} rows from 3 shards in {len(sizes)} partitions of {sizes} rows",
        ),
        ("key range", f"[{window[0]:,}, {window[1]:,}) touches only {plan.shards_touched}"),
    ]


def _seed_orders(emu: LakebaseEmulator, rows: int) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(emu.admin_conninfo(DATABASE), autocommit=True) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(emu.user_name)))
        conn.execute("DROP TABLE IF EXISTS public.orders, public.customer_totals")
        conn.execute(
            "CREATE TABLE public.orders (id bigint PRIMARY KEY, customer text NOT NULL, "
            "amount numeric(12,2) NOT NULL, ordered_at timestamptz NOT NULL)"
        )
        conn.execute(
            "INSERT INTO public.orders SELECT g, 'customer-' || lpad((g * 7919 %% 50)::text, 2, '0'), "
            "round((g %% 1000) * 1.37 + 5, 2), timestamptz '2026-01-01' + g * interval '1 minute' "
            "FROM generate_series(1, %s) g",
            (rows,),
        )


def say(text: str) -> None:
    print(f"[lakebase-spark demo] {text}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
