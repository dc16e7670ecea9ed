"""Case 5: write throughput, our write defaults against Spark's, and psql's COPY FROM as the limit."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

from psycopg import sql

from ..context import Context
from ..data import ORDERS, TARGET
from ..measure import interleave, ratios, stat, timed
from ..readjob import orders_frame
from ..results import CaseResult, Comparison, Goal
from .read import COLUMNS, id_ranges

#: The keys lakebase_options sets for writes; Spark's defaults are batchsize 1000, no rewriting.
WRITE_KEYS = ("batchsize", "reWriteBatchedInserts")
AA = "ours-again"  # the same write once more: the run's noise floor


def run(ctx: Context) -> CaseResult:
    env, rows, parts = ctx.env, ctx.cfg.write_rows, ctx.cfg.read_partitions
    ours = env.options()
    defaults = {k: v for k, v in ours.items() if k not in WRITE_KEYS}
    # The same rows every time: read once through our provider and kept in Spark's memory.
    source = orders_frame(env.spark, ours, rows=rows, total=ctx.cfg.rows, partitions=parts).cache()
    if source.count() != rows:
        raise RuntimeError(f"the write source should hold {rows} rows")

    def truncate() -> None:
        with env.admin() as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(*TARGET.split("."))))
        env.checkpoint()

    def spark_write(options: dict[str, str]) -> float:
        truncate()
        env.settle()
        writer = source.write.format("jdbc").options(**options).option("dbtable", TARGET).mode("append")
        return timed(writer.save)

    with tempfile.TemporaryDirectory(prefix="lakebase-bench-") as tmp:
        # psql's side loads the same rows from files it exported (text format), untimed.
        whole = Path(tmp) / "orders.tsv"
        pieces = [Path(tmp) / f"orders-{i}.tsv" for i in range(parts)]
        # Constants, integers and our own temp paths: nothing to inject.
        select = f"SELECT {COLUMNS} FROM {ORDERS} WHERE id"  # noqa: S608
        env.psql(f"\\copy ({select} <= {rows}) TO '{whole}'")
        env.psql(
            *(
                f"\\copy ({select} >= {lo} AND id < {hi}) TO '{piece}'"
                for (lo, hi), piece in zip(id_ranges(rows, parts), pieces, strict=True)
            )
        )

        def psql_write(*files: Path) -> float:
            truncate()
            return env.psql(*(f"\\copy {TARGET} ({COLUMNS}) FROM '{f}'" for f in files))

        seconds = interleave(
            {
                "spark-defaults": functools.partial(spark_write, defaults),
                "ours": functools.partial(spark_write, ours),
                AA: functools.partial(spark_write, ours),
                "psql": functools.partial(psql_write, whole),
                "psql-parallel": functools.partial(psql_write, *pieces),
            },
            repeats=ctx.cfg.repeats,
            warmup=ctx.cfg.warmup,
        )
    with env.admin() as conn:
        count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*TARGET.split(".")))
        written = conn.execute(count).fetchone()
    if written is None or written[0] != rows:
        raise RuntimeError(f"the last write left {written} rows in {TARGET}, expected {rows}")
    source.unpersist()
    rate = {name: [rows / s for s in values] for name, values in seconds.items()}

    def versus(label: str, name: str, meaning: str, goal: Goal | None = None) -> Comparison:
        return Comparison(
            label="rows/s",
            baseline_label=label,
            baseline=stat(rate[name], "rows/s"),
            ours_label="ours: lakebase_options (batchsize 10000, reWriteBatchedInserts=true)",
            ours=stat(rate["ours"], "rows/s"),
            ratio=stat(ratios(rate["ours"], rate[name]), "x"),
            ratio_meaning=meaning,
            goal=goal,
        )

    goal = Goal(">=", 1.8)
    comparisons = [
        versus(
            "Spark defaults (our options without batchsize and reWriteBatchedInserts)",
            "spark-defaults",
            "our rows/s ÷ Spark defaults'",
            goal,
        ),
        versus(
            "A/A: the same write as ours, once more", AA, "ours ÷ ours: the run's noise floor (ideal 1.0)"
        ),
        versus("limit: `psql \\copy ... FROM file`, 1 stream", "psql", "our fraction of psql's rows/s"),
        versus(
            f"limit: `psql \\copy ... FROM file`, {parts} streams at once",
            "psql-parallel",
            "our fraction of parallel psql's rows/s",
        ),
    ]
    return CaseResult(
        key="write",
        title="Write throughput",
        method=[
            f"Write the same {rows:,} rows (ids 1..{rows} of `{ORDERS}`, read once through our provider in "
            f"{parts} partitions and cached in Spark) into `{TARGET}` (same columns, primary key, "
            "autovacuum off) with `mode('append')`. The target is truncated before every run, outside "
            "the clock, followed by a `CHECKPOINT` (so no side's write pays for flushing the previous one's) "
            "and a full GC in the Spark JVM; the clock covers the Spark job. Rows/s = rows ÷ seconds.",
            "**Ours**: `lakebase_options` as they are (`batchsize=10000`, `reWriteBatchedInserts=true`: "
            "pgjdbc turns each batch into multi-row INSERTs). **Baseline**: the same options without those "
            "two keys, i.e. Spark's defaults (`batchsize=1000`, one INSERT per row in a pipelined batch). "
            "Both through our provider. **A/A**: our write once more, to show the run's noise floor.",
            "Limit: psql 15 over TLS with the token as PGPASSWORD, `\\copy orders_target FROM '<file>'` of "
            "the same rows exported beforehand (text format), in 1 stream and in "
            f"{parts} streams at once (one file per id range, like Spark's partitions); wall time includes "
            "psql's start-up and login.",
        ],
        comparisons=comparisons,
        notes=_notes(comparisons, goal),
    )


def _notes(comparisons: list[Comparison], goal: Goal) -> list[str]:
    head, aa, psql = comparisons[0], comparisons[1], comparisons[2]
    copy_vs_defaults = psql.baseline.median / head.baseline.median
    notes = [
        f"The A/A comparison (two identical writes) came out at {aa.ratio.median:.3f} (rounds "
        f"{aa.ratio.low:.2f}-{aa.ratio.high:.2f}): the noise floor of this run."
    ]
    if not goal.met(head.ratio.median):
        notes.append(
            f"Goal {goal} {goal.shortfall(head.ratio.median)}. Why: Spark's default path is not "
            "row-at-a-time over the network: pgjdbc sends each batch of 1000 single-row INSERTs (a "
            "server-prepared statement after the 5th use) pipelined, in one round trip. Rewriting into "
            "multi-row INSERTs (pgjdbc caps them at 128 rows per statement) saves the per-statement work "
            "(bind, execute, one result per row) but not the per-row work both sides share: Spark and "
            "pgjdbc encoding each value, Postgres parsing numeric and timestamptz text, the heap insert, "
            "the primary-key index and WAL. A ratio of r means that shared work is about 1/r of the "
            f"baseline's time per row: {1 / head.ratio.median:.0%} here, on 2 cores shared by the Spark "
            "tasks and the Postgres backends. The rounds spread over "
            f"{head.ratio.low:.2f}-{head.ratio.high:.2f}, around the goal. What would close it: no "
            "option of the JDBC writer does. A COPY-based writer (pgjdbc's "
            "CopyManager, one COPY per partition, via `foreachPartition`) skips per-statement work "
            f"entirely: psql's COPY moved these rows {copy_vs_defaults:.1f}x as fast as Spark's defaults."
        )
    notes.append(
        "psql's COPY is the limit: one statement streams every row through Postgres' COPY code; any "
        "INSERT, even a rewritten multi-row one, is parsed, bound and executed per statement, and Spark "
        "encodes each value from its row format first."
    )
    return notes
