"""Case 12: the readers of ``lakebase_spark.read`` side by side: the jar's binary-COPY reader (the
default), the JDBC reader it replaced (``reader="jdbc"``), the jar-free ``format("lakebase")`` reader,
and the physical limit, psql's COPY over as many streams; with each side's CPU per million rows.
"""

from __future__ import annotations

import functools

from lakebase_spark import read as lakebase_read

from ..context import Context
from ..data import ORDERS
from ..env import DATABASE, ENDPOINT
from ..measure import cpu_split, interleave, metered, stat, timed
from ..readjob import VARIANTS, noop_write
from ..results import CaseResult, Comparison, Goal
from ..results import versus as compare
from .read import copy_out, id_ranges
from .reads import processes, where_the_time_goes

SIDES = {
    "copy": "`read(..., key='id')`: the binary-COPY reader",
    "jdbc": "`read(..., key='id', reader='jdbc')`: the JDBC reader",
    "jar-free": "`read(..., key='id', jar_free=True)`: `format(\"lakebase\")`",
    "psql": "limit: `psql \\copy ... TO '/dev/null'`, one stream per partition",
}


def run(ctx: Context) -> CaseResult:
    env, rows, parts = ctx.env, ctx.cfg.rows, ctx.cfg.read_partitions

    def read(**kwargs: object) -> float:
        env.settle()

        def job() -> None:  # planning and the snapshot's export count: they are part of every read
            df = lakebase_read(
                env.spark, ORDERS, endpoint=ENDPOINT, database=DATABASE, key="id", partitions=parts,
                hold=600, broker=env.broker, **kwargs,
            )  # fmt: skip
            noop_write(df)

        return timed(job)

    meter = cpu_split(processes(env))
    cpu: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}

    parallel = [copy_out(f" WHERE id >= {lo} AND id < {hi}") for lo, hi in id_ranges(rows, parts)]
    seconds = interleave(
        {
            "copy": metered(meter, cpu["copy"], functools.partial(read, reader="copy")),
            "jdbc": metered(meter, cpu["jdbc"], functools.partial(read, reader="jdbc")),
            "jar-free": metered(meter, cpu["jar-free"], functools.partial(read, jar_free=True)),
            "psql": metered(meter, cpu["psql"], functools.partial(env.psql, *parallel)),
        },
        repeats=ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
    )
    rate = {k: [rows / s for s in v] for k, v in seconds.items()}
    comparisons = [
        compare(
            rate,
            ("copy", SIDES["copy"]),
            ("psql", SIDES["psql"]),
            "fraction of parallel psql's rows/s",
            Goal(">=", 0.9),
        ),
        compare(
            rate,
            ("copy", SIDES["copy"]),
            ("jdbc", SIDES["jdbc"]),
            "COPY reader rows/s ÷ JDBC reader rows/s",
            Goal(">=", 1.2),
        ),
        compare(
            rate,
            ("jar-free", SIDES["jar-free"]),
            ("jdbc", SIDES["jdbc"]),
            "jar-free rows/s ÷ JDBC reader rows/s",
            Goal(">=", 0.9),
        ),
    ]
    memory = dict(
        zip(
            ("copy-reader", "ours"),
            ctx.jobs.get_many([("copy-reader", rows, parts), ("ours", rows, parts)]),
            strict=True,
        )
    )
    if all(job.error is None for job in memory.values()):
        copy_job, jdbc_job = memory["copy-reader"], memory["ours"]
        comparisons.append(
            Comparison(
                label="old-generation growth during one read, own process (MiB)",
                baseline_label="the JDBC reader: " + VARIANTS["ours"],
                baseline=stat([jdbc_job.old_gen_growth_mib], "MiB"),
                ours_label=VARIANTS["copy-reader"],
                ours=stat([copy_job.old_gen_growth_mib], "MiB"),
                ratio=stat([copy_job.old_gen_growth_mib / max(jdbc_job.old_gen_growth_mib, 1.0)], "x"),
                ratio_meaning="the COPY reader's growth ÷ the JDBC reader's (batches reused: flat in rows)",
            )
        )
    memory_notes = [
        f"Memory, each reader in a Spark JVM of its own reading all {rows:,} rows: "
        + "; ".join(
            f"{VARIANTS[v]}: old generation grew {job.old_gen_growth_mib:.1f} MiB, peak RSS "
            f"{job.peak_kib / 1024:.0f} MiB ({job.growth_mib:.0f} MiB over idle)"
            if job.error is None
            else f"{VARIANTS[v]}: failed ({job.error[:200]})"
            for v, job in memory.items()
        )
    ]
    return CaseResult(
        key="copyread",
        title="lakebase_spark.read: binary COPY, JDBC, jar-free, psql",
        method=[
            f"All {rows:,} rows of `{ORDERS}` (bigint, bigint, numeric(12,2), text, timestamptz) into "
            f"Spark's `noop` sink, {parts} partitions cut at `id`'s quantiles, one exported snapshot "
            "imported by every partition; each round plans anew. The three readers differ only in how a "
            "partition's rows reach Spark: one `COPY (SELECT ...) TO STDOUT (FORMAT binary)` decoded into "
            "column vectors in the JVM, Spark's JDBC reader over pgjdbc, or the Python data source over "
            f"ADBC. psql's `\\copy` over {parts} id ranges at once is the limit. Same Spark session "
            "(local[2]), rounds interleaved.",
        ],
        comparisons=comparisons,
        notes=where_the_time_goes(cpu, rows, ctx.cfg.warmup, SIDES) + memory_notes,
    )
