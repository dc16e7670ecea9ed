"""``lakebase-spark`` (also ``python -m lakebase_spark``): doctor, jar, submit-args, emulator."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..spark.classpath import jar_path, submit_args
from ..targets import DEFAULT_DATABASE

__all__ = ["main", "submit_args"]

_MARK = {"pass": "ok  ", "fail": "FAIL", "warn": "warn"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lakebase-spark", description="Spark and Databricks Lakebase: set-up checks and helpers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    doctor = commands.add_parser(
        "doctor", help="check every step from Databricks auth to a Postgres login, with fixes"
    )
    doctor.add_argument("--endpoint", help="projects/<project>/branches/<branch>/endpoints/<endpoint>")
    doctor.add_argument("--instance", help="a Lakebase Provisioned instance name (instead of --endpoint)")
    doctor.add_argument("--database", default=DEFAULT_DATABASE, help="database to log in to (%(default)s)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument("--no-jvm", action="store_true", help="skip the jar and JVM checks")
    commands.add_parser("jar", help="print the provider jar's path")
    commands.add_parser("submit-args", help="print the --jars/--driver-class-path flags spark-submit needs")
    emulator = commands.add_parser("emulator", help="run the local Lakebase emulator until Ctrl-C")
    emulator.add_argument("args", nargs=argparse.REMAINDER, help="see lakebase-spark emulator -- --help")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "jar":
        print(jar_path())
        return 0
    if args.command == "submit-args":
        print(" ".join(submit_args()))
        return 0
    if args.command == "emulator":
        from ..testing.__main__ import main as emulator_main

        rest = [a for a in args.args if a != "--"]
        return emulator_main(rest)
    from .doctor import run_checks

    if (args.endpoint is None) == (args.instance is None):
        print("lakebase-spark doctor: give --endpoint or --instance", file=sys.stderr)
        return 2
    checks = run_checks(
        endpoint=args.endpoint, instance=args.instance, database=args.database, jvm=not args.no_jvm
    )
    if args.json:
        print(json.dumps([c.to_json() for c in checks], indent=2))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"{_MARK[c.status]}  {c.name:<{width}}  {c.detail}")
            if c.fix and c.status != "pass":
                print(f"      {'':<{width}}  fix: {c.fix}")
    return 1 if any(c.status == "fail" for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
