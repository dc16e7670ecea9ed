"""Logical replication slots for change streams: made with a snapshot that matches their start, read
without consuming (``peek``), advanced only to what the reader has committed, listed and dropped.

Every slot function needs the REPLICATION attribute (or superuser); one reader may use a slot at a
time; a slot's position is saved at checkpoints only, so after a crash it can go back (readers drop
what they get before their start). A slot keeps WAL until it is advanced: a stopped stream makes the
database keep its WAL (Lakebase drops slots idle for about 40 hours). Each failure a stream can meet
before reading is a typed error that says what to do.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ..errors import LakebaseSparkError
from ..names import TableName
from .pgoutput import lsn_text, parse_lsn

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "PLUGIN",
    "SLOT_NAME",
    "HeldSnapshot",
    "LogicalDecodingOffError",
    "PublicationMissingError",
    "ReplicationError",
    "ReplicationPrivilegeError",
    "SlotBusyError",
    "SlotExistsError",
    "SlotLostError",
    "SlotMissingError",
    "SlotState",
    "advance",
    "check_replication",
    "create_slot",
    "drop_slot",
    "ensure_publication",
    "list_slots",
    "peek",
    "slot_state",
]

PLUGIN = "pgoutput"
#: Slot names Postgres takes: lower-case letters, digits and underscores, at most 63.
SLOT_NAME = re.compile(r"[a-z0-9_]{1,63}")


class ReplicationError(LakebaseSparkError):
    """A change stream cannot read its table's changes; the message starts with the fix."""

    def __init__(self, message: str, *, slot: str | None = None) -> None:
        super().__init__(message)
        self.slot = slot


class LogicalDecodingOffError(ReplicationError):
    """The server's ``wal_level`` is not ``logical``: it writes no changes a slot could decode."""


class ReplicationPrivilegeError(ReplicationError, PermissionError):
    """The role lacks the REPLICATION attribute every slot function needs."""


class PublicationMissingError(ReplicationError, LookupError):
    """The stream's publication does not exist (or leaves out the table) and the role may not make it."""


class SlotMissingError(ReplicationError, LookupError):
    """The stream's slot is gone (dropped by hand, or by Lakebase after ~40 idle hours or a branch
    restore): its changes since the last batch are lost to it."""


class SlotLostError(ReplicationError):
    """The slot exists but the server removed WAL it still needed (``wal_status = lost``)."""


class SlotBusyError(ReplicationError):
    """Another process is reading the slot (one reader per slot at a time)."""


class SlotExistsError(ReplicationError):
    """A new stream (no checkpoint) found its slot already made: it cannot know what it missed."""


@dataclass(frozen=True)
class SlotState:
    """A replication slot as ``pg_replication_slots`` shows it."""

    name: str
    plugin: str | None
    database: str | None
    active_pid: int | None
    #: Where a reader continues: the end of the last transaction it confirmed (advanced to).
    confirmed_flush: int | None
    restart_lsn: int | None
    #: reserved, extended, unreserved or lost (lost: it can no longer be read).
    wal_status: str | None
    #: WAL the slot keeps the server from removing, in bytes.
    retained_bytes: int | None
    temporary: bool


def check_replication(conn: psycopg.Connection[Any]) -> None:
    """The server decodes changes and the role may read slots, or a typed error naming the fix."""
    row = conn.execute(
        "SELECT current_setting('wal_level'), r.rolreplication OR r.rolsuper, current_user "
        "FROM pg_roles r WHERE r.rolname = current_user"
    ).fetchone()
    assert row is not None
    wal_level, may_replicate, user = row
    if wal_level != "logical":
        raise LogicalDecodingOffError(
            f"To fix: set wal_level = logical on this server and restart it (Lakebase has it on by "
            f"default). A change stream reads a logical replication slot; wal_level is {wal_level!r}"
        )
    if not may_replicate:
        raise ReplicationPrivilegeError(
            f"To fix: read the stream as a role with the REPLICATION attribute (on Lakebase, the project "
            f"owner's OAuth role has it; or a Postgres password role made with CREATE ROLE ... LOGIN "
            f"REPLICATION), or use mode=xmin, which needs no slot. Role {user!r} lacks REPLICATION, which "
            "every replication slot function needs"
        )


def slot_state(conn: psycopg.Connection[Any], slot: str) -> SlotState | None:
    found = list_slots(conn, slot)
    return found[0] if found else None


def list_slots(conn: psycopg.Connection[Any], slot: str | None = None) -> list[SlotState]:
    """The logical slots of this server (or the one named), with the WAL each keeps."""
    rows = conn.execute(
        "SELECT slot_name, plugin, database, active_pid, confirmed_flush_lsn::text, restart_lsn::text, "
        "wal_status, CASE WHEN restart_lsn IS NULL THEN NULL "
        "ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint END, temporary "
        "FROM pg_replication_slots WHERE slot_type = 'logical' AND (%s::text IS NULL OR slot_name = %s) "
        "ORDER BY slot_name",
        (slot, slot),
    ).fetchall()
    return [_state(*row) for row in rows]


def _state(
    name: str, plugin: str | None, database: str | None, pid: int | None, confirmed: str | None,
    restart: str | None, status: str | None, retained: int | None, temporary: bool,
) -> SlotState:  # fmt: skip
    return SlotState(
        name,
        plugin,
        database,
        pid,
        parse_lsn(confirmed) if confirmed else None,
        parse_lsn(restart) if restart else None,
        status,
        int(retained) if retained is not None else None,
        bool(temporary),
    )


def usable(state: SlotState | None, slot: str, database: str) -> SlotState:
    """The slot, if a stream can read it now; else the typed error naming what to do."""
    if state is None:
        raise SlotMissingError(
            f"To fix: restart the stream from scratch (drop its checkpoint; a new slot {slot!r} is made with "
            f"a snapshot of the table) or restore the slot. Replication slot {slot!r} does not exist: it was "
            "dropped (by hand, or by Lakebase after about 40 idle hours or a branch restore), so the changes "
            "since the stream's last batch cannot be read from it; the stream does not silently restart "
            "from now",
            slot=slot,
        )
    if state.plugin != PLUGIN or state.database != database:
        raise ReplicationError(
            f"To fix: give the stream a slotName of its own. Slot {slot!r} belongs to another reader "
            f"(plugin {state.plugin!r}, database {state.database!r}; a stream needs {PLUGIN!r} on "
            f"{database!r})",
            slot=slot,
        )
    if state.wal_status == "lost":
        raise SlotLostError(
            f"To fix: drop the slot (lakebase_spark.changes.drop_slot(...)) and the stream's checkpoint, and "
            f"start it again (a new snapshot). Slot {slot!r} is invalid: the server removed WAL it still "
            "needed (wal_status lost; max_slot_wal_keep_size exceeded while the stream was stopped)",
            slot=slot,
        )
    return state


def ensure_publication(conn: psycopg.Connection[Any], publication: str, table: TableName) -> None:
    """The publication exists and publishes the table; made for it here if missing and the role may."""
    from psycopg import errors

    row = conn.execute(
        "SELECT p.pubname, EXISTS (SELECT 1 FROM pg_publication_tables t WHERE t.pubname = p.pubname "
        "AND t.schemaname = %s AND t.tablename = %s) FROM pg_publication p WHERE p.pubname = %s",
        (table.schema, table.name, publication),
    ).fetchone()
    if row is not None and row[1]:
        return
    statement = (
        sql.SQL("ALTER PUBLICATION {} ADD TABLE {}")
        if row is not None
        else sql.SQL("CREATE PUBLICATION {} FOR TABLE {}")
    ).format(sql.Identifier(publication), table.sql())
    try:
        conn.execute(statement)
    except (errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState) as e:
        raise PublicationMissingError(
            f"To fix: have the table's owner (or an admin) run {statement.as_string(conn)}; then start the "
            f"stream again. Publication {publication!r} "
            + ("does not publish " if row is not None else "for ")
            + f"{table} is missing and this role may not make it ({e.diag.message_primary})"
        ) from None


@dataclass
class HeldSnapshot:
    """A slot's exported snapshot, held by a transaction on ``connection`` (imported there the moment the
    slot was made): ``id`` is its re-export, for partitions to import; ``lsn`` the slot's start."""

    connection: psycopg.Connection[Any]
    id: str
    lsn: int

    def close(self) -> None:
        self.connection.close()


def create_slot(
    connect: Callable[..., psycopg.Connection[Any]], slot: str, *, snapshot: bool
) -> tuple[int, HeldSnapshot | None]:
    """Make ``slot`` (pgoutput); returns its consistent point and, with ``snapshot``, the snapshot that
    matches it exactly, held.

    Only ``CREATE_REPLICATION_SLOT ... (SNAPSHOT 'export')`` on a replication connection exports a
    snapshot that matches the slot's start (a snapshot taken by SQL after the slot can miss a
    transaction that committed in WAL before it but was not yet visible). The export lives until that
    connection's next command, so it is imported at once into a transaction kept on another connection,
    and exported again from there.
    """
    from psycopg import errors

    replication = connect(replication="database", autocommit=True)
    try:
        try:
            row = replication.execute(
                f"CREATE_REPLICATION_SLOT {slot} LOGICAL {PLUGIN} "  # slot: checked against SLOT_NAME
                f"(SNAPSHOT '{'export' if snapshot else 'nothing'}')"
            ).fetchone()
        except errors.DuplicateObject:
            raise SlotExistsError(
                f"To fix: drop the slot (lakebase_spark.changes.drop_slot(...)) or give this stream another "
                f"slotName; to go on with the stream that made it, start from that stream's checkpoint. "
                f"Replication slot {slot!r} already exists, and a stream without a checkpoint cannot tell "
                "which changes it held",
                slot=slot,
            ) from None
        assert row is not None
        lsn = parse_lsn(row[1])
        if not snapshot:
            return lsn, None
        holder = connect(autocommit=False)
        try:
            holder.execute("SET idle_in_transaction_session_timeout = 0")
            holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            holder.execute(f"SET TRANSACTION SNAPSHOT '{row[2]}'")  # a server-made id
            again = holder.execute("SELECT pg_export_snapshot()").fetchone()
        except BaseException:
            holder.close()
            raise
        assert again is not None
        return lsn, HeldSnapshot(holder, str(again[0]), lsn)
    finally:
        replication.close()


#: How long a reader waits for a slot another process holds: the reader of a driver or executor that died
#: holds it until the server notices its connection is gone.
BUSY_WAIT = 15.0


def peek(
    conn: psycopg.Connection[Any], slot: str, publication: str, upto_lsn: int | None, upto_changes: int | None
) -> list[tuple[int, bytes]]:
    """The slot's pgoutput messages ``(lsn, data)`` from its confirmed position, whole transactions, up to
    ``upto_lsn`` (transactions committing before it) or past ``upto_changes``; consumes nothing."""
    from psycopg import errors

    deadline = time.monotonic() + BUSY_WAIT
    while True:
        try:
            # Binary results: the messages as they are (bytea's text form is twice as long, in hex)
            rows = conn.execute(
                "SELECT (lsn - '0/0'::pg_lsn)::int8, data FROM pg_logical_slot_peek_binary_changes(%s, "
                "%s::pg_lsn, %s, 'proto_version', '1', 'publication_names', %s)",
                (slot, lsn_text(upto_lsn) if upto_lsn is not None else None, upto_changes, publication),
                binary=True,
            ).fetchall()
            break
        except errors.ObjectInUse as e:
            streaming = _held_by_a_replication_client(conn, slot)
            if not streaming and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            held = (
                "by a replication client (pg_recvlogical, a CDC tool)"
                if streaming
                else (f"for {BUSY_WAIT:.0f} s")
            )
            raise SlotBusyError(
                f"To fix: stop the other reader of slot {slot!r} (another stream or pg_recvlogical using "
                f"it), or give this stream its own slotName. The slot is in use ({held}): "
                f"{e.diag.message_primary}",
                slot=slot,
            ) from None
        except errors.UndefinedObject as e:
            if "publication" in str(e.diag.message_primary or ""):
                raise PublicationMissingError(
                    f"To fix: make the publication again (CREATE PUBLICATION {publication} FOR TABLE ...) "
                    f"and restart the stream; it was dropped while the stream ran ({e.diag.message_primary})",
                    slot=slot,
                ) from None
            gone = f"replication slot {slot!r} is gone: {e.diag.message_primary}"
            raise SlotMissingError(gone, slot=slot) from None
    return [(lsn, bytes(data)) for lsn, data in rows]


def _held_by_a_replication_client(conn: psycopg.Connection[Any], slot: str) -> bool:
    """Whether a walsender holds the slot: a replication client streaming from it, which does not let go
    by itself (a stream's reader that died is a regular backend, gone when the server notices)."""
    # pg_stat_replication's pids are visible to every role (its other columns are not)
    row = conn.execute(
        "SELECT 1 FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid "
        "WHERE s.slot_name = %s",
        (slot,),
    ).fetchone()
    return row is not None


def advance(conn: psycopg.Connection[Any], slot: str, lsn: int) -> None:
    """Move the slot's confirmed position to ``lsn`` (never back): its WAL before that can go."""
    state = slot_state(conn, slot)
    if state is None or state.confirmed_flush is None or state.confirmed_flush >= lsn:
        return
    conn.execute("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (slot, lsn_text(lsn)))


def drop_slot(conn: psycopg.Connection[Any], slot: str) -> bool:
    """Drop the slot (it must be idle); False if there was none."""
    if slot_state(conn, slot) is None:
        return False
    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    return True
