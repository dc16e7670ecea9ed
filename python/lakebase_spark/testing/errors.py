"""Errors raised by the local Lakebase emulator."""

from __future__ import annotations

from ..errors import LakebaseSparkError

__all__ = [
    "BerDecodeError",
    "EmulatorError",
    "EmulatorNotRunningError",
    "PostgresNotFoundError",
    "PostgresStartError",
]


class EmulatorError(LakebaseSparkError):
    """Base class of every error the emulator raises."""


class EmulatorNotRunningError(EmulatorError, RuntimeError):
    """The emulator (or one of its servers) is not started, or already stopped."""


class PostgresNotFoundError(EmulatorError, FileNotFoundError):
    """No PostgreSQL server binaries (initdb, postgres) were found on this machine."""


class PostgresStartError(EmulatorError, RuntimeError):
    """The private PostgreSQL server could not be initialised, started or restarted."""


class BerDecodeError(EmulatorError, ValueError):
    """Bytes received by the LDAP server are not a well-formed LDAP message."""
