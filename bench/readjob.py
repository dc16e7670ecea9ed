"""A plain Spark JDBC read of the orders table in its own process: ``python -m bench.readjob``.

Memory is measured per process: a JVM's peak resident set (``VmHWM``) only grows, so each variant
and each size gets a fresh Spark JVM (in local mode the driver is also the executor). The parent
passes the workspace URL and its PAT in the environment; the JSON result on stdout holds no secret.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .env import DATABASE, ENDPOINT, plain_options, say, settle, spark_builder
from .measure import peak_rss_kib, timed

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from .env import BenchEnv

__all__ = ["VARIANTS", "ReadJobResult", "ReadJobs", "Variant", "orders_frame", "variant_options"]

Variant = Literal["ours", "basic", "spark-defaults", "fetchsize-0", "copy-reader"]
#: What each variant is, in the words of the report.
VARIANTS: dict[Variant, str] = {
    "ours": "lakebase_options defaults (provider `lakebase`, fetchsize 10000)",
    "basic": "provider `basic`, static password, fetchsize 10000",
    "spark-defaults": "provider `lakebase`, no fetchsize option (Spark's default)",
    "fetchsize-0": "provider `lakebase`, fetchsize 0 (Spark ≤ 4.1's Postgres default: whole result buffered)",
    "copy-reader": "`lakebase_spark.read(..., key='id')`: the binary-COPY reader, one snapshot",
}
TIMEOUT = 900
#: The warm-up read (JIT, first connections) reads this many rows: the code path, not the volume.
WARMUP_ROWS = 50_000


def variant_options(variant: Variant, ours: dict[str, str], token: str | None) -> dict[str, str]:
    """The JDBC options of a variant, from ``lakebase_options`` (and a static token for ``basic``)."""
    if variant == "ours":
        return dict(ours)
    if variant == "basic":
        if token is None:
            raise ValueError("the basic variant needs a token for its static password")
        return plain_options(ours, token)
    if variant == "spark-defaults":
        return {k: v for k, v in ours.items() if k != "fetchsize"}
    if variant == "fetchsize-0":
        return dict(ours, fetchsize="0")
    if variant == "copy-reader":
        return {}  # lakebase_spark.read builds its own
    raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")


def orders_frame(
    spark: SparkSession, options: dict[str, str], *, rows: int, total: int, partitions: int
) -> DataFrame:
    """Ids 1..rows of public.orders in ``partitions`` equal id ranges (Spark's partitionColumn)."""
    # A subquery only for a prefix of the table: the full read is the plain table a user would name.
    prefix = f"(SELECT * FROM public.orders WHERE id <= {int(rows)}) AS o"  # noqa: S608 - an integer
    table = "public.orders" if rows >= total else prefix
    return (
        spark.read.format("jdbc")
        .options(**options)
        .option("dbtable", table)
        .option("partitionColumn", "id")
        .option("lowerBound", "1")
        .option("upperBound", str(rows + 1))
        .option("numPartitions", str(partitions))
        .load()
    )


def noop_write(df: DataFrame) -> None:
    """Read every row into Spark and drop it: the read alone, no sink cost."""
    df.write.format("noop").mode("overwrite").save()


def copy_frame(spark: SparkSession, workspace: Any, partitions: int) -> DataFrame:
    """All of public.orders through ``lakebase_spark.read``'s binary-COPY reader, one snapshot."""
    from lakebase_spark import read

    return read(
        spark, "public.orders", endpoint=ENDPOINT, database=DATABASE, key="id", partitions=partitions,
        workspace_client=workspace,
    )  # fmt: skip


@dataclass(frozen=True)
class ReadJobResult:
    variant: Variant
    rows: int
    partitions: int
    seconds: list[float]
    #: Peak RSS of the Spark JVM after start-up and one trivial job, and after all the reads.
    idle_peak_kib: int
    peak_kib: int
    heap_max_mib: int
    #: Most the JVM's old generation grew during a read, over its size right after a full GC: data
    #: that outlived young collections, e.g. a result set buffered whole. (RSS growth also counts
    #: the heap the JVM committed for young garbage, and the JIT's code.)
    old_gen_growth_mib: float = 0.0
    error: str | None = None

    @property
    def growth_mib(self) -> float:
        return (self.peak_kib - self.idle_peak_kib) / 1024


JobKey = tuple[Variant, int, int]  # (variant, rows, partitions)


class ReadJobs:
    """Runs read jobs in child processes and remembers each result.

    One process per job, so each JVM's peak memory is that job's. ``batch`` runs all the jobs asked
    for at once in one process instead: only for ``--quick``, whose figures are not read (a JVM's peak
    then covers every job before it) but whose code paths are the same.
    """

    def __init__(self, env: BenchEnv, *, total_rows: int, repeats: int, batch: bool = False) -> None:
        self._env = env
        self._total = total_rows
        self._repeats = repeats
        self._batch = batch
        self._done: dict[JobKey, ReadJobResult] = {}

    def get(self, variant: Variant, rows: int, partitions: int) -> ReadJobResult:
        return self.get_many([(variant, rows, partitions)])[0]

    def get_many(self, keys: list[JobKey]) -> list[ReadJobResult]:
        missing = list(dict.fromkeys(k for k in keys if k not in self._done))
        for group in [missing] if self._batch and missing else [[k] for k in missing]:
            self._done.update(zip(group, self._run(group), strict=True))
        return [self._done[k] for k in keys]

    def _run(self, keys: list[JobKey]) -> list[ReadJobResult]:
        for variant, rows, partitions in keys:
            say(f"  read job in its own JVM: {variant}, {rows:,} rows, {partitions} partitions")
        argv = [
            sys.executable,
            "-m",
            "bench.readjob",
            f"--total={self._total}",
            f"--repeats={self._repeats}",
            *(f"--job={variant}:{rows}:{partitions}" for variant, rows, partitions in keys),
        ]
        done = subprocess.run(  # noqa: S603 - our own argv, no shell
            argv, env=self._env.child_env(), capture_output=True, text=True, timeout=TIMEOUT, check=False
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode == 0 and len(lines) == len(keys):
            return [ReadJobResult(**json.loads(line)) for line in lines]
        if len(keys) > 1 or keys[0][0] == "ours":
            raise RuntimeError(
                f"the read job {argv[3:]} failed (exit {done.returncode}): {done.stderr[-3000:]}"
            )
        # A baseline running out of memory is a finding, not a broken benchmark: report it.
        variant, rows, partitions = keys[0]
        return [ReadJobResult(variant, rows, partitions, [], 0, 0, 0, 0.0, error=_failure(done.stderr))]


def _failure(stderr: str) -> str:
    found = re.findall(r"(java\.lang\.\w+(?:Error|Exception)[^\n]{0,160})", stderr)
    return found[-1] if found else (stderr.strip().splitlines() or ["no output"])[-1][:200]


def _job(text: str) -> JobKey:
    variant, rows, partitions = text.split(":")
    if variant not in VARIANTS:
        raise argparse.ArgumentTypeError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return variant, int(rows), int(partitions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readjob", description=__doc__)
    parser.add_argument(
        "--job", type=_job, action="append", required=True, help="variant:rows:partitions (repeatable)"
    )
    parser.add_argument("--total", type=int, required=True, help="rows of public.orders")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from databricks.sdk import WorkspaceClient
    from databricks.sdk.config import Config

    from lakebase_spark import lakebase_options, shared_broker_service, stop_shared_broker_services

    workspace = WorkspaceClient(
        config=Config(
            host=os.environ["LAKEBASE_BENCH_HOST"], token=os.environ["LAKEBASE_BENCH_PAT"], auth_type="pat"
        )
    )
    spark = spark_builder("bench read job").getOrCreate()
    try:
        jvm: Any = spark.sparkContext._jvm
        pid = int(jvm.java.lang.ProcessHandle.current().pid())
        spark.range(1).count()
        idle = peak_rss_kib(pid)
        ours = dict(lakebase_options(ENDPOINT, database=DATABASE, workspace_client=workspace))
        token = shared_broker_service(workspace).broker.credential(endpoint=ENDPOINT).token.reveal()
        # G1's "G1 Old Gen" (the default here), Parallel's "PS Old Gen", Serial's "Tenured Gen".
        old_gen = [
            pool
            for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans()
            if any(name in str(pool.getName()) for name in ("Old Gen", "Tenured"))
        ]
        if not old_gen:
            raise RuntimeError("this JVM has no old-generation memory pool to measure (which GC is this?)")
        results = []
        for variant, rows, partitions in args.job:
            options = variant_options(variant, ours, token)
            if variant == "copy-reader":  # the whole table (read() takes a table, not a prefix of it)
                df = copy_frame(spark, workspace, partitions)
                noop_write(df)
            else:
                warm = min(rows, WARMUP_ROWS)
                noop_write(orders_frame(spark, options, rows=warm, total=args.total, partitions=partitions))
                df = orders_frame(spark, options, rows=rows, total=args.total, partitions=partitions)
            seconds, old_growth = [], []
            for _ in range(args.repeats):
                settle(spark)
                for pool in old_gen:
                    pool.resetPeakUsage()
                base = sum(int(p.getUsage().getUsed()) for p in old_gen)
                seconds.append(timed(functools.partial(noop_write, df)))
                old_growth.append((sum(int(p.getPeakUsage().getUsed()) for p in old_gen) - base) / 2**20)
            results.append(
                {
                    "variant": variant,
                    "rows": rows,
                    "partitions": partitions,
                    "seconds": seconds,
                    "idle_peak_kib": idle,
                    "peak_kib": peak_rss_kib(pid),
                    "heap_max_mib": int(jvm.java.lang.Runtime.getRuntime().maxMemory()) // 2**20,
                    "old_gen_growth_mib": max(old_growth),
                }
            )
    finally:
        spark.stop()
        stop_shared_broker_services()
    for result in results:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
