"""``python -m lakebase_spark.testing``: run a Lakebase emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from .emulator import DEFAULT_ENDPOINT, DEFAULT_INSTANCE, LakebaseEmulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lakebase_spark.testing",
        description="Run a local Lakebase emulator (workspace API + Postgres) until Ctrl-C.",
    )
    parser.add_argument(
        "--endpoint", default=DEFAULT_ENDPOINT, help="Autoscaling endpoint name (%(default)s)"
    )
    parser.add_argument(
        "--instance", default=None, help=f"also create a Provisioned instance, e.g. {DEFAULT_INSTANCE}"
    )
    parser.add_argument(
        "--database",
        action="append",
        default=None,
        help="database to create (repeatable; databricks_postgres)",
    )
    parser.add_argument("--user", default="lakebase-demo@example.com", help="default user name (%(default)s)")
    parser.add_argument(
        "--token-ttl", type=float, default=3600.0, help="credential lifetime cap, s (%(default)s)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the emulator, print how to reach it, and wait for Ctrl-C or SIGTERM."""
    args = _parser().parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    databases = args.database or ["databricks_postgres"]
    with LakebaseEmulator(token_ttl=args.token_ttl, databases=databases, user_name=args.user) as emu:
        host = emu.create_endpoint(args.endpoint)
        lines = [
            "Lakebase emulator running. Press Ctrl-C to stop.",
            f"  workspace URL   {emu.host}",
            f"  user            {emu.user_name}",
            f"  PAT             {emu.pat}",
            "                  (a throwaway credential, valid only for this local emulator)",
            f"  endpoint        {args.endpoint}",
            f"  postgres        {host} (TLS required; password = token from generate_database_credential)",
            f"  databases       {', '.join(emu.databases)}",
        ]
        if args.instance:
            lines.append(f"  instance        {args.instance} -> {emu.create_instance(args.instance)}")
        lines += [
            "",
            f"  export DATABRICKS_HOST={emu.host} DATABRICKS_TOKEN={emu.pat}",
        ]
        print("\n".join(lines), flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping...", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
