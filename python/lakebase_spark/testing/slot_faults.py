"""Replication slot faults, as Lakebase causes them: a slot dropped (after about 40 idle hours, or a
branch restore) or invalidated (the server removed WAL the slot still needed: ``wal_status`` lost)."""

from __future__ import annotations

import time

import psycopg

__all__ = ["drop_slot", "invalidate_slot"]


def drop_slot(conninfo: str, name: str) -> None:
    """Drop replication slot ``name`` (its reader, if any, disconnected first), as a superuser."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
            "WHERE slot_name = %s AND active_pid IS NOT NULL",
            (name,),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (name,))
                return
            except psycopg.errors.ObjectInUse:  # its reader still going away
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def invalidate_slot(conninfo: str, name: str) -> None:
    """Make replication slot ``name`` invalid, as a server past ``max_slot_wal_keep_size`` does: the
    limit lowered for a moment, WAL written past it, a checkpoint; then the limit set back."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (name,))
        if not found.fetchone():
            raise ValueError(f"no replication slot {name!r} to invalidate")
        conn.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
        conn.execute("SELECT pg_reload_conf()")
        try:
            deadline = time.monotonic() + 60
            while True:
                for _ in range(3):  # a few segments of WAL past the slot
                    conn.execute("SELECT pg_logical_emit_message(false, 'lakebase-emulator', 'x')")
                    conn.execute("SELECT pg_switch_wal()")
                conn.execute("CHECKPOINT")
                state = conn.execute(
                    "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (name,)
                ).fetchone()
                if state is not None and state[0] == "lost":
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"slot {name!r} is still {state[0] if state else 'gone'!r}")
        finally:
            conn.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
            conn.execute("SELECT pg_reload_conf()")
