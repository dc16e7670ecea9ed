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
    slots = commands.add_parser("slots", help="list the database's logical replication slots, or drop one")
    slots.add_argument("action", choices=("list", "drop"))
    slots.add_argument("name", nargs="?", help="the slot to drop")
    slots.add_argument("--endpoint", help="projects/<project>/branches/<branch>/endpoints/<endpoint>")
    slots.add_argument("--instance", help="a Lakebase Provisioned instance name (instead of --endpoint)")
    slots.add_argument("--database", default=DEFAULT_DATABASE, help="the database (%(default)s)")
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
    if (args.endpoint is None) == (args.instance is None):
        print(f"lakebase-spark {args.command}: give --endpoint or --instance", file=sys.stderr)
        return 2
    if args.command == "slots":
        return _slots(args)
    from .doctor import run_checks

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


def _slots(args: argparse.Namespace) -> int:
    from ..changes import drop_slot, list_slots

    target = {"endpoint": args.endpoint, "instance": args.instance, "database": args.database}
    if args.action == "drop":
        if not args.name:
            print("lakebase-spark slots drop: name the slot", file=sys.stderr)
            return 2
        dropped = drop_slot(args.name, **target)
        print(f"dropped slot {args.name}" if dropped else f"no slot {args.name}")
        return 0 if dropped else 1
    found = list_slots(**target)
    if not found:
        print("no logical replication slots")
    for s in found:
        reader = f"read by pid {s.active_pid}" if s.active_pid else "idle"
        retained = "?" if s.retained_bytes is None else f"{s.retained_bytes:,} bytes of WAL"
        print(f"{s.name}  database {s.database}  {reader}  keeps {retained}  ({s.wal_status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
