"""The main job on the embedded default: read a Lakebase table through Spark, write one back.

Runs against the local Lakebase emulator (a real PostgreSQL server behind a local workspace API),
so it needs no Databricks account: ``python -m lakebase_spark.demo``. Against a real workspace the
job is the same; only ``lakebase_options`` gets a real endpoint and ``WorkspaceClient()`` its usual
authentication.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient
    from pyspark.sql import DataFrame, SparkSession

    from lakebase_spark.testing import LakebaseEmulator

ENDPOINT = "projects/demo/branches/main/endpoints/primary"
DATABASE = "databricks_postgres"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lakebase_spark.demo", description=__doc__)
    parser.add_argument("--master", default="local[2]", help="Spark master (default: local[2])")
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the demo orders table")
    parser.add_argument("--token-ttl", type=float, default=3600.0, help="emulator token lifetime, seconds")
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
        spark = lakebase_spark.configure(
            builder.config("spark.ui.showConsoleProgress", "false")
        ).getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        try:
            workspace = emu.workspace_client("pat")
            opts = lakebase_spark.lakebase_options(ENDPOINT, database=DATABASE, workspace_client=workspace)
            say(f"options: {opts}")

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
            say(f"read {orders.count():,} orders in {orders.rdd.getNumPartitions()} partitions")
            say(f"wrote public.customer_totals: {back.count()} customers, top 3 by revenue:")
            for row in back.orderBy(F.desc("revenue")).limit(3).collect():
                say(f"  {row.customer:<12} {row.orders:>7,} orders  {row.revenue:>16,.2f}")

            _sharded(spark, emu, workspace, orders, args.rows)

            service = lakebase_spark.shared_broker_service(workspace)
            say(
                f"credentials: {service.broker.stats.mints} minted, {service.tokens_served} served to JVMs, "
                f"{emu.tokens.stats.logins_ok} Postgres logins with them ({elapsed:.1f} s end to end)"
            )
        finally:
            spark.stop()
            lakebase_spark.stop_shared_broker_services()
    say("done")
    return 0


def _sharded(
    spark: SparkSession, emu: LakebaseEmulator, workspace: WorkspaceClient, orders: DataFrame, rows: int
) -> None:
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
    say(f"sharded write: {written.rows}")
    sharded = read_sharded(
        spark, shard_map, table="public.orders", key="id", partitions=6, shard_column="shard", broker=broker
    )
    sizes = sorted(row["count"] for row in sharded.groupBy(F.spark_partition_id()).count().collect())
    say(f"sharded read: {sharded.count():,} rows from 3 shards in {len(sizes)} partitions of {sizes} rows")
    window = (rows // 4, rows // 2)
    plan = plan_sharded_read(
        shard_map, table="public.orders", key="id", key_range=window, partitions=2, broker=broker
    )
    say(f"key range [{window[0]:,}, {window[1]:,}) touches only {plan.shards_touched}")


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
