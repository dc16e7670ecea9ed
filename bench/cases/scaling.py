"""Case 6: how read time and JVM memory grow with rows and with partitions."""

from __future__ import annotations

import statistics
from typing import Any

from ..context import Context
from ..measure import stat
from ..readjob import VARIANTS, ReadJobResult, Variant
from ..results import CaseResult, Comparison, Table

#: Rows sweep: ours against fetchsize 0 (Spark ≤ 4.1's default), whose memory grows with the rows.
ROW_VARIANTS: tuple[Variant, ...] = ("ours", "fetchsize-0")
#: Old-generation growth in a read below this means no rows outlived their fetch.
OLD_GEN_HOLDS_ROWS_MIB = 50
HEADERS = [
    "variant",
    "rows",
    "partitions",
    "read s, median (min-max)",
    "rows/s",
    "JVM peak RSS MiB",
    "RSS growth MiB",
    "old-gen growth MiB",
]


def _point(job: ReadJobResult) -> dict[str, Any]:
    point: dict[str, Any] = {
        "variant": job.variant,
        "rows": job.rows,
        "partitions": job.partitions,
        "error": job.error,
    }
    if job.error is None:
        seconds = stat(job.seconds, "s")
        point.update(
            seconds=seconds.median,
            seconds_min=seconds.low,
            seconds_max=seconds.high,
            rows_per_s=job.rows / seconds.median,
            peak_mib=job.peak_kib / 1024,
            growth_mib=job.growth_mib,
            old_gen_growth_mib=job.old_gen_growth_mib,
        )
    return point


def _row(p: dict[str, Any]) -> list[Any]:
    if p["error"] is not None:
        return [p["variant"], f"{p['rows']:,}", p["partitions"], f"failed: {p['error']}", "", "", "", ""]
    return [
        p["variant"],
        f"{p['rows']:,}",
        p["partitions"],
        f"{p['seconds']:.2f} ({p['seconds_min']:.2f}-{p['seconds_max']:.2f})",
        f"{p['rows_per_s']:,.0f}",
        round(p["peak_mib"]),
        round(p["growth_mib"]),
        round(p["old_gen_growth_mib"]),
    ]


def _where(p: dict[str, Any]) -> str:
    return f"{p['variant']}, {p['rows']:,} rows, {p['partitions']} partition{'s' * (p['partitions'] != 1)}"


def _growth(label: str, small: dict[str, Any], large: dict[str, Any], key: str, meaning: str) -> Comparison:
    unit = "s" if key == "seconds" else "MiB"
    return Comparison(
        label=label,
        baseline_label=_where(small),
        baseline=stat([small[key]], unit),
        ours_label=_where(large),
        ours=stat([large[key]], unit),
        ratio=stat([large[key] / max(small[key], 1e-9 if unit == "s" else 1.0)], "x"),
        ratio_meaning=meaning,
    )


def linear_fit(points: list[dict[str, Any]]) -> tuple[float, float] | None:
    """Least-squares ``seconds = fixed + rows / marginal_rate``: (fixed seconds, marginal rows/s)."""
    good = [p for p in points if p["error"] is None]
    if len(good) < 2:
        return None
    slope, intercept = statistics.linear_regression([p["rows"] for p in good], [p["seconds"] for p in good])
    return (intercept, 1 / slope) if slope > 0 else None


def run(ctx: Context) -> CaseResult:
    cfg, jobs = ctx.cfg, ctx.jobs
    jobs.get_many(
        [(v, r, cfg.read_partitions) for v in ROW_VARIANTS for r in cfg.scaling_rows]
        + [("ours", cfg.rows, p) for p in cfg.scaling_partitions]
    )
    by_rows = {
        v: [_point(jobs.get(v, r, cfg.read_partitions)) for r in cfg.scaling_rows] for v in ROW_VARIANTS
    }
    by_partitions = [_point(jobs.get("ours", cfg.rows, p)) for p in cfg.scaling_partitions]
    ours, zero = by_rows["ours"], by_rows["fetchsize-0"]
    times = cfg.rows // cfg.scaling_rows[0]
    comparisons = [
        _growth(
            f"read time, ours, {times}x the rows (s)",
            ours[0],
            ours[-1],
            "seconds",
            f"time at the largest ÷ at the smallest ({times} = proportional to rows)",
        ),
        _growth(
            f"old-generation growth in a read, ours, {times}x the rows (MiB)",
            ours[0],
            ours[-1],
            "old_gen_growth_mib",
            "growth at the largest ÷ at the smallest (1 = independent of rows)",
        ),
    ]
    if zero[0]["error"] is None and zero[-1]["error"] is None:
        comparisons.append(
            _growth(
                f"old-generation growth in a read, fetchsize 0, {times}x the rows (MiB)",
                zero[0],
                zero[-1],
                "old_gen_growth_mib",
                f"growth at the largest ÷ at the smallest ({times} = proportional to rows)",
            )
        )
    comparisons.append(
        _growth(
            f"read time, ours, 1 → {by_partitions[-1]['partitions']} partitions (s)",
            by_partitions[0],
            by_partitions[-1],
            "seconds",
            "time with the most partitions ÷ with 1",
        )
    )
    fit = linear_fit(ours)
    fastest = min(by_partitions, key=lambda p: p["seconds"])
    notes = [
        "Time against rows: a straight line through ours' medians gives "
        + (
            f"{fit[0]:.2f} s of fixed cost per job (job start, {cfg.read_partitions} logins, query start) "
            f"plus {fit[1]:,.0f} rows/s at the margin: small reads look slow per row, large ones approach "
            "the margin."
            if fit
            else "no positive slope (the sizes are too small to tell the rows from the noise)."
        ),
        "Partitions: local[2] runs 2 tasks at a time. Median read times: "
        + ", ".join(f"{p['partitions']} → {p['seconds']:.2f} s" for p in by_partitions)
        + f" (fastest: {_where(fastest).split(', ')[-1]}). One partition leaves a core idle; beyond the "
        "cores, more partitions add a login and a task each but bound each task's size (and a retry's); "
        "differences within the rounds' spread in the table are noise.",
    ]
    if zero[-1]["error"] is None:
        notes.append(
            f"Memory: with ours the JVM's resident set grew {ours[0]['growth_mib']:.0f} → "
            f"{ours[-1]['growth_mib']:.0f} MiB over {times}x the rows (old generation "
            f"{ours[0]['old_gen_growth_mib']:.0f} → {ours[-1]['old_gen_growth_mib']:.0f} MiB)"
            + (
                ": no rows are held, what RSS shows is the heap the JVM committed for short-lived garbage. "
                if ours[-1]["old_gen_growth_mib"] < OLD_GEN_HOLDS_ROWS_MIB
                else ". "
            )
            + "With "
            f"fetchsize 0 it grew {zero[0]['growth_mib']:.0f} → {zero[-1]['growth_mib']:.0f} MiB (old "
            f"generation {zero[0]['old_gen_growth_mib']:.0f} → {zero[-1]['old_gen_growth_mib']:.0f} MiB): "
            "each running task holds its whole result set, until the heap runs out."
        )
    else:
        notes.append(f"fetchsize 0 failed at {zero[-1]['rows']:,} rows: {zero[-1]['error']}.")
    return CaseResult(
        key="scaling",
        title="Scaling with rows and partitions",
        method=[
            "Each point is a Spark process of its own (`python -m bench.readjob`, local[2], 1 GiB heap): "
            f"a short warm-up read, then {cfg.child_repeats} timed reads of ids 1..rows of `public.orders` "
            "into the `noop` sink, partitioned by id, a full GC before each; time is the median (min-max) "
            "of those reads. Memory: the Spark JVM's peak RSS (`VmHWM`) after the reads and its growth "
            "over the same after start-up, and the most the old generation grew during one read.",
            f"Rows: {', '.join(f'{r:,}' for r in cfg.scaling_rows)} with {cfg.read_partitions} partitions, "
            f"for ours ({VARIANTS['ours']}) and for fetchsize 0 (Spark ≤ 4.1's Postgres default). "
            f"Partitions: {', '.join(map(str, cfg.scaling_partitions))} over all {cfg.rows:,} rows, ours. "
            "Comparisons here are between sizes of one variant, measured in separate processes (not "
            "interleaved): read them as shapes, not as precise ratios. Plot: `scaling.png`.",
        ],
        comparisons=comparisons,
        tables=[
            Table("By rows", HEADERS, [_row(p) for v in ROW_VARIANTS for p in by_rows[v]]),
            Table("By partitions (ours)", HEADERS, [_row(p) for p in by_partitions]),
        ],
        notes=notes,
        data={
            "by_rows": by_rows,
            "by_partitions": by_partitions,
            "fit": None if fit is None else {"fixed_s": fit[0], "marginal_rows_per_s": fit[1]},
        },
    )
