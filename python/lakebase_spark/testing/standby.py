"""A hot standby of the emulator's Postgres: a second cluster made with ``pg_basebackup`` from the
primary and kept up to date by streaming replication, as a Lakebase read replica (an endpoint of type
``ENDPOINT_TYPE_READ_ONLY``, asynchronous, with its own host) is. Lag and read-only errors are real:
:meth:`StandbyServer.pause_replay` stops applying the primary's WAL until :meth:`resume_replay`.
"""

from __future__ import annotations

import subprocess
from typing import Any

from ._pgconf import conf_value
from .errors import PostgresStartError
from .postgres import PostgresServer

__all__ = ["StandbyServer"]


class StandbyServer(PostgresServer):
    """A streaming replica of ``primary`` (same roles, databases, TLS and logins), on its own port."""

    def __init__(self, primary: PostgresServer, **kwargs: Any) -> None:
        super().__init__(ldap_port=primary.ldap_port, admin_user=primary.admin_user, **kwargs)
        self.primary = primary

    def _initdb(self) -> None:
        # A copy of the primary's data directory (its TLS files and pg_hba.conf included); -R writes
        # standby.signal and primary_conninfo, over the primary's private socket.
        cmd = [
            str(self._binary("pg_basebackup")),
            "-D",
            str(self.data_dir),
            "-h",
            str(self.primary.socket_dir),
            "-p",
            str(self.primary.port),
            "-U",
            self.admin_user,
            "-R",
            "--checkpoint=fast",
            "--no-sync",
        ]
        result = subprocess.run(  # noqa: S603 - our own argv, no shell
            cmd, capture_output=True, text=True, timeout=300, **self._subprocess_kwargs()
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()[-2000:]
            raise PostgresStartError(
                f"pg_basebackup failed (exit {result.returncode}): {output}.{self._hint()}"
            )

    def _configure(self) -> None:
        # Its own socket; the rest (TLS, hba, settings) came with the copy. Later lines win.
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# Lakebase emulator: hot standby\n")
            conf.write(f"unix_socket_directories = {conf_value(str(self.socket_dir))}\n")
            conf.write("hot_standby = on\n")

    def pause_replay(self) -> None:
        """Stop applying the primary's changes (they still arrive): the replica falls behind."""
        with self._admin() as conn:
            conn.execute("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        with self._admin() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")

    def wait_for_primary(self, timeout: float = 30.0) -> None:
        """Block until everything the primary has written so far is replayed here (its insert position:
        the emulator commits asynchronously, so a commit may not be flushed yet; the WAL writer will)."""
        import time

        with self.primary._admin() as primary:
            row = primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout
        with self._admin() as conn:
            while True:
                done = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {target} within {timeout:.0f} s")
                time.sleep(0.02)
