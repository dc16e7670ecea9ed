"""Case 9: the jar-free path (``format("lakebase")``, Python workers, ADBC binary COPY) against the JDBC
provider's reads, the JVM COPY writer, Spark's default JDBC write and psql's COPY."""

from __future__ import annotations

import functools
import uuid

from psycopg import sql

from lakebase_spark import write
from lakebase_spark.datasource import register, source_options

from ..context import Context
from ..data import ORDERS, TARGET
from ..env import DATABASE, ENDPOINT
from ..measure import interleave, peak_python_worker_mib, timed
from ..readjob import noop_write, orders_frame
from ..results import CaseResult, Comparison, Goal
from ..results import versus as compare
from .read import copy_out, id_ranges
from .write import WRITE_KEYS, check_target


def run(ctx: Context) -> CaseResult:
    env, rows, parts, write_rows = ctx.env, ctx.cfg.rows, ctx.cfg.read_partitions, ctx.cfg.write_rows
    spark = env.spark
    register(spark)
    opts = source_options(ENDPOINT, database=DATABASE, broker=env.broker)
    jdbc = env.options()
    jar_free_read = (
        spark.read.format("lakebase")
        .options(**opts)
        .option("dbtable", ORDERS)
        .option("partitionColumn", "id")
        .option("numPartitions", str(parts))
        .load()
    )
    provider_read = orders_frame(spark, jdbc, rows=rows, total=rows, partitions=parts)
    source = orders_frame(spark, jdbc, rows=write_rows, total=rows, partitions=parts).cache()
    if source.count() != write_rows:
        raise RuntimeError(f"the write source should hold {write_rows} rows")
    target_sql = sql.Identifier(*TARGET.split("."))

    def read(df: object) -> float:
        env.settle()
        return timed(functools.partial(noop_write, df))

    def truncate() -> None:
        with env.admin() as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(target_sql))
        env.checkpoint()
        env.settle()

    def jar_free_write() -> float:
        truncate()
        writer = (
            source.write.format("lakebase")
            .options(**opts)
            .option("dbtable", TARGET)
            .option("writeId", uuid.uuid4().hex)
            .mode("append")
        )
        return timed(writer.save)

    def jvm_write() -> float:
        truncate()
        return timed(lambda: write(source, TARGET, endpoint=ENDPOINT, database=DATABASE, broker=env.broker))

    def jdbc_write() -> float:
        truncate()
        defaults = {k: v for k, v in jdbc.items() if k not in WRITE_KEYS}
        return timed(
            source.write.format("jdbc").options(**defaults).option("dbtable", TARGET).mode("append").save
        )

    parallel = [copy_out(f" WHERE id >= {lo} AND id < {hi}") for lo, hi in id_ranges(rows, parts)]
    read_seconds = interleave(
        {
            "jar-free": functools.partial(read, jar_free_read),
            "provider": functools.partial(read, provider_read),
            "psql-parallel": functools.partial(env.psql, *parallel),
        },
        repeats=ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
    )
    write_seconds = interleave(
        {"jar-free": jar_free_write, "jvm": jvm_write, "spark-defaults": jdbc_write},
        repeats=ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
    )
    check_target(env, write_rows)
    source.unpersist()
    # Memory flat in rows: one partition of an eighth of the table, then one of all of it.
    small = max(rows // 8, 1)

    def one_partition(limit: int) -> float:
        query = f"SELECT * FROM {ORDERS} WHERE id <= {limit}"  # noqa: S608 - our own table and a number
        df = spark.read.format("lakebase").options(**opts).option("query", query).load()
        env.settle()
        return peak_python_worker_mib(functools.partial(noop_write, df))

    memory = interleave(
        {"eighth": functools.partial(one_partition, small), "all": functools.partial(one_partition, rows)},
        repeats=max(3, ctx.cfg.repeats // 2),
        warmup=1,
    )
    read_rate = {k: [rows / s for s in v] for k, v in read_seconds.items()}
    write_rate = {k: [write_rows / s for s in v] for k, v in write_seconds.items()}

    def versus(
        rate: dict[str, list[float]],
        ours_label: str,
        label: str,
        name: str,
        meaning: str,
        goal: Goal | None = None,
    ) -> Comparison:
        return compare(rate, ("jar-free", ours_label), (name, label), meaning, goal)

    reads = 'jar-free read: `format("lakebase")`, ADBC binary COPY to Arrow'
    writes = 'jar-free write: `format("lakebase")`, ADBC binary COPY from Arrow, exactly once'
    comparisons = [
        versus(
            read_rate,
            reads,
            "the JDBC provider path (`lakebase_options`, pgjdbc)",
            "provider",
            "jar-free rows/s ÷ the provider's",
            Goal(">=", 0.8),
        ),
        versus(
            read_rate,
            reads,
            f"limit: `psql \\copy ... TO '/dev/null'`, {parts} streams at once",
            "psql-parallel",
            "jar-free fraction of parallel psql's rows/s",
        ),
        versus(
            write_rate,
            writes,
            "the JVM COPY writer (`lakebase_spark.write`)",
            "jvm",
            "jar-free rows/s ÷ the JVM writer's",
            Goal(">=", 0.7),
        ),
        versus(
            write_rate,
            writes,
            "Spark's default JDBC write",
            "spark-defaults",
            "jar-free rows/s ÷ Spark defaults'",
            Goal(">=", 2.0),
        ),
        compare(
            memory,
            ("all", f"peak Python worker RSS, one partition of {rows:,} rows"),
            ("eighth", f"peak Python worker RSS, one partition of {small:,} rows"),
            "memory for 8x the rows ÷ memory for 1x (flat: 1.0)",
            Goal("<=", 1.25),
            unit="MiB",
        ),
    ]
    return CaseResult(
        key="jarfree",
        title="The jar-free path",
        method=[
            f"Reads: all {rows:,} rows of `{ORDERS}` into Spark's `noop` sink, {parts} partitions each: "
            '`format("lakebase")` with `partitionColumn=id` (ranges from `pg_stats`) against the JDBC '
            "provider path (`lakebase_options`, `partitionColumn=id`, equal id ranges) and psql's "
            f"`\\copy` over {parts} id ranges at once. Writes: {write_rows:,} rows cached in Spark, "
            "appended into an emptied table (truncated and checkpointed before each round): "
            '`format("lakebase")` (a new `writeId` per round) against `lakebase_spark.write` (the JVM '
            "COPY writer) and Spark's JDBC writer with its defaults. Same Spark session (local[2]), "
            "rounds interleaved. Memory: the largest resident set of any Spark Python worker (sampled "
            "from /proc every 20 ms) while one partition of an eighth of the table, then of all of it, "
            "is read into `noop`.",
        ],
        comparisons=comparisons,
        notes=[],
    )
