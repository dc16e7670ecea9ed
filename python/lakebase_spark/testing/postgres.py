"""A private PostgreSQL server, started from the machine's binaries, with Lakebase's login rules.

Logins over TCP must use TLS and are checked by LDAP simple bind against the emulator's token store, so
a database token is the password, checked only at login, as on Lakebase. The admin role logs in over a
Unix socket inside the server's own directory (trust), for test setup only.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ..serving.certificates import self_signed_certificate
from . import slot_faults
from ._pgconf import PASSWORD_ROLES, SETTINGS, write_config
from .coldstart import StartingUpResponder
from .errors import EmulatorNotRunningError, PostgresStartError
from .pgbin import BINDIR_ENV, RunAs, find_bindir, server_user

__all__ = ["ADMIN_USER", "BINDIR_ENV", "PostgresServer", "find_bindir"]

logger = logging.getLogger(__name__)

ADMIN_USER: Final = "lakebase_admin"

_READY_TIMEOUT_SECONDS: Final = 30.0
_STOP_TIMEOUT_SECONDS: Final = 10.0
_PORT_ATTEMPTS: Final = 3
_SOCKET_PATH_MAX: Final = 107  # sun_path is 108 bytes on Linux, including the NUL


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a private temporary directory, listening on ``127.0.0.1:<port>``.

    Parameters
    ----------
    ldap_port
        Port of the LDAP server that checks TCP logins (see :mod:`.ldap`).
    workdir
        Parent of the server's temporary directory (default: the system temp dir). When running as root
        the server runs as the ``postgres`` (or ``nobody``) OS user, which must be able to reach it.
    bindir
        PostgreSQL bin directory; found with :func:`find_bindir` by default.
    settings
        ``postgresql.conf`` settings over the emulator's defaults (e.g. ``max_connections``).
    """

    host: Final = "127.0.0.1"

    def __init__(
        self,
        *,
        ldap_port: int,
        workdir: str | os.PathLike[str] | None = None,
        bindir: str | os.PathLike[str] | None = None,
        admin_user: str = ADMIN_USER,
        ldap_prefix: str = "uid=",
        ldap_suffix: str = ",ou=lakebase",
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.ldap_port = ldap_port
        self._settings = {**SETTINGS, **(settings or {})}
        self.admin_user = admin_user
        self._ldap_prefix = ldap_prefix
        self._ldap_suffix = ldap_suffix
        self._workdir = None if workdir is None else Path(workdir)
        self._bindir = None if bindir is None else Path(bindir)
        self._run_as: RunAs | None = None
        self._root: Path | None = None
        self._port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        # Serialises start, stop and restart of the server process.
        self._lock = threading.RLock()
        self._closing = threading.Event()  # set by stop(); interrupts a cold restart between its phases

    # -- locations ------------------------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The server's private temporary directory."""
        if self._root is None:
            raise EmulatorNotRunningError("Postgres server is not started; call start() first")
        return self._root

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        """Directory of the Unix socket used for admin logins."""
        return self.root / "socket"

    @property
    def cert_file(self) -> Path:
        """The server's self-signed certificate (usable as ``sslrootcert`` for ``verify-full``)."""
        return self.data_dir / "server.crt"

    @property
    def log_file(self) -> Path:
        """The server's log (its stderr)."""
        return self.root / "postgres.log"

    @property
    def port(self) -> int:
        """The TCP port of the server (TLS + token logins)."""
        if not self._port:
            raise EmulatorNotRunningError("Postgres server is not started; call start() first")
        return self._port

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``: what the emulator reports as endpoint host / instance DNS."""
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is up (it may still be starting)."""
        with self._lock:
            return self._process is not None and self._process.poll() is None

    def admin_conninfo(self, dbname: str = "postgres") -> str:
        """libpq conninfo for the superuser over the Unix socket (test setup only)."""
        return make_conninfo(host=str(self.socket_dir), port=self.port, user=self.admin_user, dbname=dbname)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server log (it holds no passwords: Postgres never logs them)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create, configure and start the cluster; return once it accepts connections."""
        with self._lock:
            if self._root is not None:
                return
            self._closing.clear()
            self._bindir = self._bindir or find_bindir()
            self._run_as = server_user()
            self._root = Path(tempfile.mkdtemp(prefix="lakebase-emu-", dir=self._workdir))
            try:
                socket_path = len(str(self.socket_dir)) + len("/.s.PGSQL.65535")
                if socket_path > _SOCKET_PATH_MAX:
                    raise ValueError(
                        f"workdir {str(self._workdir)!r} is too long for a Unix socket path ({socket_path} >"
                        f" {_SOCKET_PATH_MAX} bytes); pass a shorter workdir such as /tmp"
                    )
                self.socket_dir.mkdir()
                self._chown(self._root, self.socket_dir)
                self._initdb()
                self._configure()
                for attempt in range(_PORT_ATTEMPTS):
                    self._port = _free_port(self.host)
                    try:
                        self._launch()
                        break
                    except PostgresStartError:
                        # Another process may have taken the free port between our probe and the bind.
                        if attempt + 1 == _PORT_ATTEMPTS or "could not bind" not in self.log_tail():
                            raise
            except BaseException:
                self._teardown()
                raise

    def stop(self) -> None:
        """Fast shutdown (like ``pg_ctl stop -m fast``) and remove the directory; idempotent."""
        self._closing.set()
        with self._lock:
            self._teardown()

    def suspend(self, *, crash: bool = False) -> None:
        """Stop the server process, keeping its data, as a scaled-to-zero endpoint (fast shutdown), or
        as a crash (``crash``: immediate shutdown, ``pg_ctl stop -m immediate``: no checkpoint, so the
        restart runs crash recovery and replication slots go back to their last checkpointed position)."""
        with self._lock:
            if self._root is None or self._closing.is_set():
                raise EmulatorNotRunningError("Postgres server is not running; nothing to suspend")
            self._stop_process(crash=crash)

    def reset_wal(self, *args: str) -> None:
        """Run ``pg_resetwal`` with ``args`` on the cluster, stopped by :meth:`suspend` (then :meth:`wake`
        it): ``reset_wal("-e", "1")`` makes it a cluster that has used 2^32 transaction ids."""
        with self._lock:
            if self._root is None or self._process is not None:
                raise EmulatorNotRunningError("reset_wal needs a suspended server (call suspend() first)")
            done = subprocess.run(  # noqa: S603 - our own argv
                [str(self._binary("pg_resetwal")), *args, "-D", str(self.data_dir)],
                capture_output=True, text=True, check=False, timeout=60, **self._subprocess_kwargs(),
            )  # fmt: skip
            if done.returncode != 0:
                raise PostgresStartError(f"pg_resetwal {' '.join(args)} failed: {done.stderr.strip()}")

    def drop_slot(self, name: str) -> None:
        """Drop replication slot ``name`` as Lakebase does (``slot_faults.drop_slot``)."""
        slot_faults.drop_slot(self.admin_conninfo(), name)

    def invalidate_slot(self, name: str) -> None:
        """Make replication slot ``name`` invalid (``slot_faults.invalidate_slot``)."""
        slot_faults.invalidate_slot(self.admin_conninfo(), name)

    def wake(self, down_seconds: float, starting_seconds: float) -> None:
        """After :meth:`suspend`: stay down ``down_seconds`` (connections refused), answer 57P03 for
        ``starting_seconds``, then start the server again on the same port. Blocks until it is ready.
        """
        if self._closing.wait(down_seconds):
            return
        try:
            responder = StartingUpResponder(
                self.host,
                self._port,
                cert_file=str(self.cert_file),
                key_file=str(self.data_dir / "server.key"),
            )
        except OSError as e:
            raise PostgresStartError(
                f"cold start: port {self._port} was taken while Postgres was down ({e});"
                " the endpoint cannot come back on its advertised port"
            ) from e
        responder.start()
        try:
            self._closing.wait(starting_seconds)
        finally:
            # From here until the server listens (a few milliseconds) connections are refused.
            responder.stop()
        with self._lock:
            if not self._closing.is_set():
                self._launch()

    def _teardown(self) -> None:
        self._stop_process()
        if self._log is not None:
            self._log.close()
            self._log = None
        root, self._root = self._root, None
        self._port = 0
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)

    # -- process management ---------------------------------------------------------------------------

    def _binary(self, name: str) -> Path:
        if self._bindir is None:
            raise EmulatorNotRunningError("Postgres server is not started; call start() first")
        return self._bindir / name

    def _chown(self, *paths: Path) -> None:
        if self._run_as is None:
            return
        for path in paths:
            os.chown(path, self._run_as.uid, self._run_as.gid)

    def _subprocess_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "cwd": str(self.root),  # the server user may not be able to enter our current directory
            "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "HOME": str(self.root)},
            "stdin": subprocess.DEVNULL,
        }
        if self._run_as is not None:
            # Drop root's supplementary groups too, not only uid/gid.
            kwargs.update(user=self._run_as.uid, group=self._run_as.gid, extra_groups=[])
        return kwargs

    def _hint(self) -> str:
        if self._run_as is None:
            return ""
        return (
            f" PostgreSQL runs as OS user {self._run_as.name!r}, which must be able to reach {self.root}:"
            " every parent directory needs o+x, or leave workdir unset to use the system temp directory."
        )

    def _initdb(self) -> None:
        cmd = [
            str(self._binary("initdb")),
            "-D",
            str(self.data_dir),
            "-U",
            self.admin_user,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",  # see _pgconf.SETTINGS: durability is pointless here
            "--no-instructions",
        ]
        result = subprocess.run(  # noqa: S603 - our own argv, no shell
            cmd, capture_output=True, text=True, timeout=120, **self._subprocess_kwargs()
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()[-2000:]
            raise PostgresStartError(f"initdb failed (exit {result.returncode}): {output}.{self._hint()}")

    def _configure(self) -> None:
        cert = self_signed_certificate(["localhost", "127.0.0.1"], common_name="localhost")
        cert_path, key_path = self.data_dir / "server.crt", self.data_dir / "server.key"
        # Postgres refuses a key readable by others: 0600 and owned by the server user.
        cert.write(cert_path, key_path)
        self._chown(cert_path, key_path)
        write_config(
            self.data_dir,
            dict(self._settings, unix_socket_directories=str(self.socket_dir)),
            ldap_port=self.ldap_port,
            ldap_prefix=self._ldap_prefix,
            ldap_suffix=self._ldap_suffix,
        )

    def _launch(self) -> None:
        """Start the server process on self._port and wait until it accepts connections."""
        if self._log is None:
            self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own argv, no shell
            [str(self._binary("postgres")), "-D", str(self.data_dir), "-p", str(self._port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Its own session, so a Ctrl-C in the terminal reaches only us and we shut it down in order.
            start_new_session=True,
            **self._subprocess_kwargs(),
        )
        deadline = time.monotonic() + _READY_TIMEOUT_SECONDS
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise PostgresStartError(
                    f"postgres exited with code {code} while starting on port {self._port}; log:\n"
                    f"{self.log_tail()}\n{self._hint()}".rstrip()
                )
            try:
                with psycopg.connect(self.admin_conninfo(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self._stop_process()
                    raise PostgresStartError(
                        f"postgres did not accept connections within {_READY_TIMEOUT_SECONDS:.0f}s; log:\n"
                        f"{self.log_tail()}"
                    ) from None
                time.sleep(0.02)

    def _stop_process(self, *, crash: bool = False) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            # SIGINT is Postgres' "fast" shutdown: roll back open transactions, disconnect, checkpoint;
            # SIGQUIT its "immediate" one: every process exits at once, as in a crash.
            signals = [(signal.SIGINT, _STOP_TIMEOUT_SECONDS)] if not crash else []
            for sig, timeout in (*signals, (signal.SIGQUIT, 5.0)):
                process.send_signal(sig)
                try:
                    process.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    logger.warning("postgres did not stop on %s within %.0fs", sig.name, timeout)
            else:
                process.kill()
                process.wait()

    # -- administration -------------------------------------------------------------------------------

    def _admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.admin_conninfo(dbname), autocommit=True)

    def create_database(self, name: str) -> bool:
        """Create database ``name`` unless it exists; return whether it was created."""
        with self._admin() as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return True

    def create_role(self, name: str, *, replication: bool = False) -> bool:
        """Create LOGIN role ``name`` (a principal) unless it exists; return whether it was created.
        ``replication``: with the REPLICATION attribute (Lakebase gives it to the project owner's role)."""
        with self._admin() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
                return False
            attributes = "LOGIN REPLICATION" if replication else "LOGIN"
            conn.execute(sql.SQL(f"CREATE ROLE {{}} {attributes}").format(sql.Identifier(name)))
            return True

    def create_password_role(self, name: str, password: str) -> None:
        """A Postgres password role (Lakebase's native login): logs in with its password, not a token."""
        with self._admin() as conn:
            conn.execute(
                sql.SQL(
                    "DO $$ BEGIN CREATE ROLE {} NOLOGIN; EXCEPTION WHEN duplicate_object THEN END $$"
                ).format(sql.Identifier(PASSWORD_ROLES))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(name), sql.Literal(password), sql.Identifier(PASSWORD_ROLES)
                )
            )

    def grant_database(self, role: str, dbname: str) -> None:
        """Let ``role`` connect to ``dbname``, create tables in ``public`` and use the admin's tables."""
        role_id, db_id, admin_id = (
            sql.Identifier(role),
            sql.Identifier(dbname),
            sql.Identifier(self.admin_user),
        )
        with self._admin() as conn:
            conn.execute(sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(db_id, role_id))
        with self._admin(dbname) as conn:
            # PG 15 no longer lets everyone create in public; Lakebase users own what they create there.
            conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(role_id))
            # Tables a test sets up as admin are usable by every principal, now and later.
            for kind in ("TABLES", "SEQUENCES"):
                kind_sql = sql.SQL(kind)
                conn.execute(sql.SQL("GRANT ALL ON ALL {} IN SCHEMA public TO {}").format(kind_sql, role_id))
                conn.execute(
                    sql.SQL(
                        "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT ALL ON {} TO {}"
                    ).format(admin_id, kind_sql, role_id)
                )
