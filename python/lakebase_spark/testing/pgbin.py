"""Where the PostgreSQL server binaries are, and which OS user runs them (Postgres refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from .errors import PostgresNotFoundError, PostgresStartError

__all__ = ["BINDIR_ENV", "RunAs", "find_bindir", "server_user"]

# Overrides the search for server binaries, e.g. /usr/lib/postgresql/16/bin.
BINDIR_ENV: Final = "LAKEBASE_EMULATOR_PG_BINDIR"


def _has_server(bindir: Path) -> bool:
    return (bindir / "initdb").is_file() and (bindir / "postgres").is_file()


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path))


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres``.

    Looks at ``$LAKEBASE_EMULATOR_PG_BINDIR``, then ``pg_config --bindir``, then the newest
    ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu layout).
    """
    tried: list[str] = []
    override = os.environ.get(BINDIR_ENV)
    if override:
        if _has_server(Path(override)):
            return Path(override)
        raise PostgresNotFoundError(
            f"${BINDIR_ENV}={override!r} holds no initdb/postgres;"
            " point it at a PostgreSQL server bin directory"
        )
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(  # noqa: S603 - our own argv, no shell
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError) as e:
            tried.append(f"{pg_config} --bindir (failed: {e})")
        else:
            candidate = Path(out.stdout.strip())
            if _has_server(candidate):
                return candidate
            tried.append(f"{candidate} (from {pg_config} --bindir)")
    else:
        tried.append("pg_config (not on PATH)")
    for candidate_dir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_server(Path(candidate_dir)):
            return Path(candidate_dir)
        tried.append(candidate_dir)
    tried.append("/usr/lib/postgresql/*/bin")
    raise PostgresNotFoundError(
        "no PostgreSQL server binaries (initdb, postgres) found; looked at: "
        + ", ".join(tried)
        + f". Install the server (e.g. apt-get install postgresql) or set ${BINDIR_ENV} to its bin directory."
    )


@dataclass(frozen=True)
class RunAs:
    """An unprivileged OS user to run the server as."""

    name: str
    uid: int
    gid: int


def server_user() -> RunAs | None:
    """Postgres refuses to run as root: when we are root, the unprivileged user to run it as."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return RunAs(name, entry.pw_uid, entry.pw_gid)
    raise PostgresStartError(
        "running as root, but neither the 'postgres' nor the 'nobody' OS user exists to run PostgreSQL as;"
        " create one (useradd --system postgres) or run as an unprivileged user"
    )
