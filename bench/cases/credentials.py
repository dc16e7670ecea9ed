"""Case 1: credential API calls per job (a 64-partition sharded read and a 16-partition write)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import functions as F

from lakebase_spark import BrokerService, TokenBroker, provider_stats
from lakebase_spark.sharding import read_sharded

from ..context import Context
from ..data import SKEWED
from ..env import SHARDS, say
from ..measure import stat
from ..results import CaseResult, Comparison, Goal, Table

READ_PARTITIONS = 64
WRITE_PARTITIONS = 16
RUNS = 3  # the counts are deterministic; three runs show that they are


def _job(ctx: Context) -> dict[str, Any]:
    env = ctx.env
    # A broker of its own, started cold: its first token is a real mint, and no other job's
    # cache hides one. Its URL is new, so the JVM's token cache has no entry for it either.
    with BrokerService(TokenBroker(env.workspace)) as broker:
        mints0 = env.emulator.stats.mints
        logins0 = env.emulator.tokens.stats.logins_ok
        jvm0 = provider_stats(env.spark)["logins"]
        df = read_sharded(
            env.spark,
            ctx.data.shard_map,
            table=SKEWED,
            key="id",
            partitions=READ_PARTITIONS,
            broker=broker,
        )
        totals = (
            df.groupBy("customer")
            .agg(F.count("*").alias("orders"), F.sum("amount").alias("revenue"))
            .repartition(WRITE_PARTITIONS)
        )
        (
            totals.write.format("jdbc")
            .options(**env.options(broker=broker))
            .option("dbtable", "public.customer_totals")
            .mode("overwrite")
            .save()
        )
        return {
            "mints": env.emulator.stats.mints - mints0,
            "logins": env.emulator.tokens.stats.logins_ok - logins0,
            "jvm_logins": provider_stats(env.spark)["logins"] - jvm0,
            "tokens_served": broker.tokens_served,
            "read_partitions": df.rdd.getNumPartitions(),
            "write_partitions": totals.rdd.getNumPartitions(),
        }


def run(ctx: Context) -> CaseResult:
    runs = []
    for i in range(1 if ctx.cfg.smoke else RUNS):
        runs.append(_job(ctx))
        say(f"  job {i + 1}: {runs[-1]['mints']} mint(s), {runs[-1]['logins']} logins")
    mints = stat([r["mints"] for r in runs], "credential calls")
    logins = stat([r["logins"] for r in runs], "credential calls")
    first = runs[0]
    return CaseResult(
        key="credentials",
        title="Credential API calls per job",
        method=[
            f"One job: `read_sharded(..., partitions={READ_PARTITIONS})` of `{SKEWED}` over "
            f"{len(SHARDS)} shard databases (a range shard map), aggregated by customer and written back "
            f"with `.repartition({WRITE_PARTITIONS})` through `lakebase_options` (mode overwrite). "
            f"Run {RUNS} times, each with a fresh `BrokerService(TokenBroker(...))`, so each run starts "
            "with no cached token anywhere.",
            "**Ours**: the emulator's count of credentials issued "
            "(`generate_database_credential` calls served, `emulator.stats.mints`) during the job.",
            "**Baseline**: the seed guides' pattern calls `generate_database_credential` once per new "
            "connection, so it makes as many calls as the job opens connections. That number is measured as "
            "the emulator's successful-login count during the same job (`emulator.tokens.stats.logins_ok`): "
            "Spark's schema look-ups on the driver, one connection per read and write task, the writer's "
            "table checks, and the planner's psycopg connections to each shard.",
        ],
        comparisons=[
            Comparison(
                label="credential calls per job",
                baseline_label="one call per connection (= logins)",
                baseline=logins,
                ours_label="lakebase-spark broker (mints)",
                ours=mints,
                ratio=stat([r["logins"] / r["mints"] for r in runs], "x"),
                ratio_meaning="baseline calls ÷ our calls (how many times fewer)",
                goal=Goal("==", 1),
                goal_on="ours",
            )
        ],
        tables=[
            Table(
                "Per run",
                [
                    "run",
                    "mints",
                    "logins (all)",
                    "of which by Spark JVM",
                    "tokens served to JVMs",
                    "partitions",
                ],
                [
                    [
                        i + 1,
                        r["mints"],
                        r["logins"],
                        r["jvm_logins"],
                        r["tokens_served"],
                        f"read {r['read_partitions']}, write {r['write_partitions']}",
                    ]
                    for i, r in enumerate(runs)
                ],
            )
        ],
        notes=[
            f"Goal: one mint per refresh window per workspace. The job runs well inside one window, so one "
            f"mint is the goal; {first['logins']} connections shared it. A 60-minute token is refreshed 10 "
            "minutes before expiry, so a longer job adds one mint per 50 minutes, whatever its connections."
        ],
    )
