"""Case 4: partition balance on skewed keys, ``read_sharded`` against Spark's partitionColumn striding."""

from __future__ import annotations

import functools
import json
import time
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pyspark.sql import functions as F

from lakebase_spark.sharding import read_sharded

from ..context import Context
from ..data import SKEWED
from ..env import SHARDS
from ..measure import interleave, ratios, stat, timed
from ..readjob import noop_write
from ..results import CaseResult, Comparison, Goal, Table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

PARTITIONS = 8
#: How long the Spark UI's status store may lag behind a finished job.
UI_LAG_SECONDS = 30.0


def partition_sizes(df: DataFrame) -> list[int]:
    counts = {
        row["p"]: row["count"] for row in df.groupBy(F.spark_partition_id().alias("p")).count().collect()
    }
    return [counts.get(p, 0) for p in range(df.rdd.getNumPartitions())]


def max_over_mean(sizes: list[int]) -> float:
    return max(sizes) / (sum(sizes) / len(sizes))


def task_seconds(spark: SparkSession, group: str) -> list[float]:
    """Durations of the tasks of every stage the job group ran, from the Spark UI's REST API."""
    sc = spark.sparkContext
    tracker = sc.statusTracker()
    stages = [s for job in tracker.getJobIdsForGroup(group) for s in _job_stages(tracker, job)]
    # The UI listens on 0.0.0.0 or the bind address; the REST API is asked on loopback.
    port = urlsplit(sc.uiWebUrl or "").port
    base = f"http://127.0.0.1:{port}/api/v1/applications/{sc.applicationId}/stages"
    out: list[float] = []
    for stage in stages:
        info = tracker.getStageInfo(stage)
        expected = info.numTasks if info is not None else 0
        deadline = time.monotonic() + UI_LAG_SECONDS
        while True:
            url = f"{base}/{stage}/{info.currentAttemptId if info else 0}/taskList?length=100000"
            with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 - our own loopback URL
                tasks: list[dict[str, Any]] = json.load(reply)
            done = [t for t in tasks if t.get("status") == "SUCCESS" and "duration" in t]
            if len(done) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # the status store is fed by the listener bus, asynchronously
        out.extend(t["duration"] / 1000 for t in done)
    return out


def _job_stages(tracker: Any, job: int) -> list[int]:
    info = tracker.getJobInfo(job)
    return list(info.stageIds) if info is not None else []


def run(ctx: Context) -> CaseResult:
    env, data = ctx.env, ctx.data
    plans: list[DataFrame] = []

    def plan() -> None:
        plans.append(
            read_sharded(
                env.spark, data.shard_map, table=SKEWED, key="id", partitions=PARTITIONS, broker=env.broker
            )
        )

    planning = [timed(plan) for _ in range(ctx.cfg.repeats)]
    striding = (
        env.spark.read.format("jdbc")
        .options(**env.options())
        .option("dbtable", SKEWED)
        .option("partitionColumn", "id")
        .option("lowerBound", str(data.skewed_min))
        .option("upperBound", str(data.skewed_max + 1))
        .option("numPartitions", str(PARTITIONS))
        .load()
    )
    frames = {"striding": striding, "ours": plans[-1]}
    longest: dict[str, list[float]] = {name: [] for name in frames}

    def stage(name: str) -> float:
        group = f"bench-balance-{name}-{uuid.uuid4().hex[:8]}"
        env.spark.sparkContext.setJobGroup(group, f"bench: case 4, {name}")
        env.settle()
        seconds = timed(lambda: noop_write(frames[name]))
        longest[name].append(max(task_seconds(env.spark, group)))
        return seconds

    # Each round's task times are read after the clock stops; warm-up rounds' are dropped below.
    walls = interleave(
        {name: functools.partial(stage, name) for name in frames},
        repeats=ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
    )
    for name in frames:
        longest[name] = longest[name][ctx.cfg.warmup :]
    sizes = {name: partition_sizes(df) for name, df in frames.items()}
    if sum(sizes["ours"]) != sum(sizes["striding"]):
        raise RuntimeError(f"the two reads disagree on the row count: {sizes}")
    balance = {name: max_over_mean(s) for name, s in sizes.items()}

    goal = Goal("<=", 1.5)
    cores = env.spark.sparkContext.defaultParallelism
    wall = stat(ratios(walls["striding"], walls["ours"]), "x").median
    slowest = stat(ratios(longest["striding"], longest["ours"]), "x").median
    share = max(sizes["striding"]) / sum(sizes["striding"])
    notes = [
        f"Stage wall time on this {cores}-core session: striding's took {wall:.2f}x ours. With "
        f"{PARTITIONS} tasks on {cores} cores, a skewed stage is late only when its largest partition "
        "outlasts the rest of the work spread over the other cores: here striding's largest holds "
        f"{share:.0%} of the rows, "
        + (
            "so the cores stay about equally busy either way. "
            if share <= 1 / cores
            else "so one core works on alone at the end. "
        )
        + "The longest task is what the stage takes with a core per partition "
        f"(a cluster): there striding's takes {slowest:.2f}x ours.",
        f"Ours pays for its balance before the job: planning (3 psycopg connections, `pg_stats` per shard, "
        f"cut points) took {stat(planning, 's').median:.2f} s (median of {len(planning)}), outside the "
        "stage time; striding needs the key's min and max, which a user also has to query.",
    ]
    if not goal.met(balance["ours"]):
        notes.insert(
            0,
            f"Goal {goal} missed: ours is {balance['ours']:.2f}. The cut points come from pg_stats' "
            "histogram (100 buckets by default): raise the key's statistics target "
            "(`ALTER TABLE ... ALTER COLUMN id SET STATISTICS 1000; ANALYZE`) for finer cuts.",
        )
    return CaseResult(
        key="balance",
        title="Partition balance on skewed keys",
        method=[
            f"{data.skewed_rows:,} rows whose key is `id = g + ⌊g³/n⌋` for g = 1..n: dense at the low end "
            "(half of the rows hold keys below 1/8 of the largest). The same rows sit in one table "
            f"(`{SKEWED}` in the bench database) and split over {len(SHARDS)} shard databases by a range "
            f"shard map (rows per shard: {data.shard_rows()}).",
            f"**Ours**: `read_sharded(spark, shard_map, table=..., key='id', partitions={PARTITIONS})`. "
            f"**Baseline**: Spark's `partitionColumn=id`, `lowerBound`/`upperBound` = the key's min and "
            f"max + 1, `numPartitions={PARTITIONS}`, on the single table. Both through our provider.",
            "Balance: rows per Spark partition from `df.groupBy(F.spark_partition_id()).count()`; "
            "max ÷ mean (1.0 is perfect; it is deterministic, one value). Time: wall time of a `noop` write "
            "of each DataFrame (the read stage) in the shared local[2] session, interleaved and repeated; "
            "and the stage's longest task (from Spark's REST API, `/stages/<id>/<attempt>/taskList`). "
            "A full GC runs before each timed read, outside the clock.",
        ],
        comparisons=[
            Comparison(
                label="max ÷ mean rows per partition",
                baseline_label="Spark partitionColumn striding",
                baseline=stat([balance["striding"]], "max/mean"),
                ours_label="read_sharded",
                ours=stat([balance["ours"]], "max/mean"),
                ratio=stat([balance["striding"] / balance["ours"]], "x"),
                ratio_meaning="striding's max/mean ÷ ours (how many times more even)",
                goal=goal,
                goal_on="ours",
            ),
            *(
                Comparison(
                    label=label,
                    baseline_label="Spark partitionColumn striding",
                    baseline=stat(times["striding"], "s"),
                    ours_label="read_sharded",
                    ours=stat(times["ours"], "s"),
                    ratio=stat(ratios(times["striding"], times["ours"]), "x"),
                    ratio_meaning=f"striding's {what} ÷ ours ({gain})",
                )
                for label, times, what, gain in (
                    ("stage wall time, local[2] (s)", walls, "time", "speed-up"),
                    (
                        "longest task = stage time with a core per partition (s)",
                        longest,
                        "longest task",
                        "speed-up on enough cores",
                    ),
                )
            ),
        ],
        tables=[
            Table(
                "Rows per partition",
                ["side", *(f"p{i}" for i in range(PARTITIONS)), "max/mean"],
                [[name, *sizes[name], round(balance[name], 2)] for name in ("striding", "ours")],
            )
        ],
        notes=notes,
    )
