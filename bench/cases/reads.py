"""Case 10: ``lakebase_spark.read``: what one snapshot for every partition costs, a text key against an
integer key, and the read against the physical limit (psql's COPY over as many streams).

The text key is compared on equal terms: ``public.orders_coded`` is ``orders`` with a text primary key
``code`` ('ORD-' and the zero-padded id, so in the table's physical order like ``id``), and both of its
keys are read. ``orders.note`` (random text, no index) shows what a key no index serves costs.
"""

from __future__ import annotations

import functools
import os
import statistics
from typing import Any

from lakebase_spark import read as lakebase_read

from ..context import Context
from ..data import ORDERS
from ..env import DATABASE, ENDPOINT
from ..measure import cpu_split, interleave, metered, timed
from ..readjob import noop_write
from ..results import CaseResult, Goal
from ..results import versus as compare
from .read import copy_out, id_ranges

CODED = "public.orders_coded"


def run(ctx: Context) -> CaseResult:
    env, rows, parts = ctx.env, ctx.cfg.rows, ctx.cfg.read_partitions

    with env.admin() as conn:
        conn.execute(f"DROP TABLE IF EXISTS {CODED}")
        conn.execute(
            f"CREATE TABLE {CODED} AS SELECT 'ORD-' || lpad(id::text, 12, '0') AS code, * FROM {ORDERS} "  # noqa: S608
            "ORDER BY id"
        )
        conn.execute(f"ALTER TABLE {CODED} ADD PRIMARY KEY (code)")
        conn.execute(f"CREATE UNIQUE INDEX ON {CODED} (id)")
        conn.execute(f"VACUUM (ANALYZE) {CODED}")
    try:
        return _run(ctx, rows, parts)
    finally:
        with env.admin() as conn:
            conn.execute(f"DROP TABLE IF EXISTS {CODED}")


def _run(ctx: Context, rows: int, parts: int) -> CaseResult:
    env = ctx.env

    def read(key: str, consistent: bool, table: str = ORDERS) -> float:
        env.settle()

        def job() -> None:  # planning and the snapshot's export count: they are part of every read
            df = lakebase_read(
                env.spark,
                table,
                endpoint=ENDPOINT,
                database=DATABASE,
                key=key,
                partitions=parts,
                consistent=consistent,
                hold=600,
                broker=env.broker,
            )
            noop_write(df)

        return timed(job)

    parallel = [copy_out(f" WHERE id >= {lo} AND id < {hi}") for lo, hi in id_ranges(rows, parts)]
    meter = cpu_split(processes(env))
    cpu: dict[str, list[dict[str, float]]] = {"plain": [], "psql-parallel": []}

    seconds = interleave(
        {
            "consistent": functools.partial(read, "id", True),
            "plain": metered(meter, cpu["plain"], functools.partial(read, "id", False)),
            "note": functools.partial(read, "note", False),
            "coded-id": functools.partial(read, "id", False, CODED),
            "coded-text": functools.partial(read, "code", False, CODED),
            "psql-parallel": metered(meter, cpu["psql-parallel"], functools.partial(env.psql, *parallel)),
        },
        repeats=ctx.cfg.repeats,
        warmup=ctx.cfg.warmup,
    )
    rate = {k: [rows / s for s in v] for k, v in seconds.items()}
    plain = ("plain", f"`read(..., key='id', consistent=False)`, {parts} partitions")
    comparisons = [
        compare(
            rate,
            ("consistent", "`read(..., key='id')`: one exported snapshot for every partition"),
            plain,
            "consistent rows/s ÷ plain rows/s (time ratio ≤ 1.1 means rate ratio ≥ 0.91)",
            Goal(">=", 1 / 1.1),
        ),
        compare(
            rate,
            ("coded-text", f"`read('{CODED}', key='code', consistent=False)`: its text primary key"),
            ("coded-id", f"`read('{CODED}', key='id', consistent=False)`: its bigint key"),
            "text-key rows/s ÷ integer-key rows/s, same table, both keys indexed in physical order",
            Goal(">=", 0.9),
        ),
        compare(
            rate,
            ("note", "`read(..., key='note', consistent=False)`: random text, no index"),
            plain,
            "a key no index serves ÷ the primary key (each partition scans the table; no goal)",
        ),
        compare(
            rate,
            ("consistent", "`read(..., key='id')`"),
            ("psql-parallel", f"limit: `psql \\copy ... TO '/dev/null'`, {parts} streams at once"),
            "fraction of parallel psql's rows/s",
            Goal(">=", 0.55),
        ),
    ]
    return CaseResult(
        key="reads",
        title="lakebase_spark.read: snapshot, key types",
        method=[
            f"All {rows:,} rows of `{ORDERS}` into Spark's `noop` sink through `lakebase_spark.read` "
            "(its default reader: binary COPY since 2026-12-07), "
            f"{parts} partitions cut at the key's `pg_stats` quantiles; each round plans anew (and, when "
            "consistent, exports and holds a snapshot that every partition imports). `note` is text "
            "('order <n> <16 hex>', no index), `id` bigint. `orders_coded` is a copy with a text primary key "
            "`code` ('ORD-' and the zero-padded id) and a unique index on `id`: its two keys compare "
            "a text key with an integer one on equal terms. psql's `\\copy` over as many id ranges at once "
            "is the physical limit. Same Spark session (local[2]), rounds interleaved.",
        ],
        comparisons=comparisons,
        notes=where_the_time_goes(
            cpu,
            rows,
            ctx.cfg.warmup,
            {"plain": "`read(..., key='id', consistent=False)`", "psql-parallel": "psql's 4 streams"},
        ),
    )


def processes(env: Any) -> dict[str, int]:
    """The processes whose CPU time a read spends: the postmaster (its backends are reaped into it)
    and Spark's JVM (driver and executors in local mode)."""
    postmaster = (env.emulator.postgres.data_dir / "postmaster.pid").read_text().split()[0]
    return {"Postgres": int(postmaster), "Spark's JVM": int(env.spark.sparkContext._gateway.proc.pid)}


def where_the_time_goes(
    cpu: dict[str, list[dict[str, float]]], rows: int, warmup: int, labels: dict[str, str]
) -> list[str]:
    """Median CPU seconds per million rows of each party, for each side ``labels`` names."""
    cores = os.cpu_count() or 1
    notes = [
        f"Where the time goes (CPU seconds per million rows, median of the measured rounds, from "
        f"/proc; {cores} cores, so a side can use at most {cores} CPU seconds per wall second):"
    ]
    for side, label in labels.items():
        runs = cpu[side][warmup:]
        parties = [k for k in runs[0] if k != "wall"]
        per_million = {k: statistics.median(r[k] for r in runs) * 1e6 / rows for k in parties}
        wall = statistics.median(r["wall"] for r in runs) * 1e6 / rows
        used = sum(per_million.values())
        spent = ", ".join(f"{k} {v:.2f}" for k, v in per_million.items() if v >= 0.005)
        notes.append(
            f"{label}: {spent}; total {used:.2f} CPU s in {wall:.2f} s wall "
            f"({used / (wall * cores):.0%} of the machine)"
        )
    return notes
