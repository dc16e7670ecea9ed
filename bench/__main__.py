"""``python -m bench``: run the twelve cases against the local Lakebase emulator and write the results."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import DEFAULT_ROWS, BenchConfig

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> tuple[BenchConfig, list[str] | None]:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark lakebase-spark against its baselines on the local Lakebase emulator; writes "
        "results.md, results.json and scaling.png.",
    )
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help=f"rows of the orders table (default {DEFAULT_ROWS:,})"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer rounds, connections and scaling points: a check that everything runs, not a measurement",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="--quick with one round of everything and no warm-up: the test suite's check that every case "
        "runs and reports (its figures are not measurements)",
    )
    parser.add_argument("--out", type=Path, default=HERE, help=f"output directory (default {HERE})")
    parser.add_argument(
        "--repeats", type=int, help="measured rounds per comparison (default 7; 3 with --quick)"
    )
    parser.add_argument("--cases", help="comma-separated subset of the cases to run (default: all)")
    args = parser.parse_args(argv)
    if args.smoke:
        cfg = BenchConfig(
            rows=args.rows, quick=True, smoke=True, out=args.out, repeats=1, warmup=0, child_repeats=1
        )
    else:
        repeats = args.repeats or (3 if args.quick else BenchConfig.repeats)
        cfg = BenchConfig(rows=args.rows, quick=args.quick, out=args.out, repeats=repeats)
    only = [c.strip() for c in args.cases.split(",")] if args.cases else None
    return cfg, only


def main(argv: list[str] | None = None) -> int:
    cfg, only = parse_args(argv)
    from .cases import CASES
    from .context import Context
    from .data import describe_columns, seed
    from .env import BenchEnv, say
    from .machine import machine, versions
    from .readjob import ReadJobs
    from .report import write_outputs

    unknown = set(only or ()) - {key for key, _ in CASES}
    if unknown:
        raise SystemExit(f"unknown case(s) {sorted(unknown)}; choose from {[key for key, _ in CASES]}")
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    results = []
    with BenchEnv.running() as env:
        say(f"emulator up: Postgres on {env.emulator.postgres_host}; generating {cfg.rows:,} rows")
        data = seed(env, cfg.rows, cfg.skewed_rows)
        jobs = ReadJobs(env, total_rows=cfg.rows, repeats=cfg.child_repeats, batch=cfg.quick)
        ctx = Context(env, cfg, data, jobs)
        about = {"machine": machine(), "versions": versions(env)}
        for number, (key, run) in enumerate(CASES, 1):
            if only is not None and key not in only:
                continue
            say(f"case {number}/{len(CASES)}: {key}")
            case_started, load_before = time.perf_counter(), os.getloadavg()[0]
            result = run(ctx)
            result.seconds = time.perf_counter() - case_started
            result.load = (round(load_before, 2), round(os.getloadavg()[0], 2))
            results.append(result)
            head = result.headline
            say(f"  {head.label}: {head.ratio.median:.3g} ({head.ratio_meaning}); {result.seconds:.0f} s")
        secrets = [env.token(), env.emulator.pat, env.broker.secret.reveal()]
    payload: dict[str, Any] = {
        "command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
        "finished_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "runtime_s": round(time.perf_counter() - started, 1),
        "load_avg_1min_before": round(load_before, 2),
        **about,
        "size": {
            "rows": cfg.rows,
            "orders_mib": round(data.orders_bytes / 2**20),
            "skewed_rows": cfg.skewed_rows,
            "write_rows": cfg.write_rows,
            "columns": describe_columns(),
        },
        "settings": {
            "quick": cfg.quick,
            "smoke": cfg.smoke,
            "repeats": cfg.repeats,
            "warmup": cfg.warmup,
            "child_repeats": cfg.child_repeats,
            "connections": cfg.connections,
            "spark_master": "local[2]",
        },
        "cases": {r.key: r.to_json() for r in results},
    }
    for path in write_outputs(cfg.out, payload, results, secrets):
        say(f"wrote {path}")
    say(f"done in {payload['runtime_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
