"""Every error lakebase-spark raises. Messages name the thing, the value and the fix, never a secret."""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "CredentialError",
    "DatabaseConnectionError",
    "EndpointNotFoundError",
    "InvalidEndpointNameError",
    "JarNotFoundError",
    "LakebaseSparkError",
    "MissingDependencyError",
    "PermissionDeniedError",
    "TLSRequiredError",
    "WriteError",
    "WriteInputError",
]


class LakebaseSparkError(Exception):
    """Base class of every error raised by lakebase-spark."""


class InvalidEndpointNameError(LakebaseSparkError, ValueError):
    """An endpoint or instance name is not of the form the Lakebase API expects."""


class TLSRequiredError(LakebaseSparkError, ValueError):
    """A connection setting would disable TLS, which Lakebase requires."""


class EndpointNotFoundError(LakebaseSparkError, LookupError):
    """The workspace has no Lakebase endpoint or instance of that name (HTTP 404)."""


class PermissionDeniedError(LakebaseSparkError, PermissionError):
    """The workspace refused the caller (HTTP 401/403): authentication or entitlement to fix."""


class CredentialError(LakebaseSparkError, RuntimeError):
    """A database credential could not be minted."""


class BrokerError(LakebaseSparkError, RuntimeError):
    """The token broker could not start or serve."""


class JarNotFoundError(LakebaseSparkError, FileNotFoundError):
    """A jar the Spark session needs (the provider or a Postgres JDBC driver) is missing."""


class MissingDependencyError(LakebaseSparkError, ImportError):
    """An optional package the call needs (psycopg, PyYAML) is not installed."""


class DatabaseConnectionError(LakebaseSparkError, ConnectionError):
    """A Lakebase database refused or failed a connection from Python (the message never holds the token)."""


class WriteInputError(LakebaseSparkError, ValueError):
    """A write was refused before any row was sent: table name, columns, types, keys or mode."""


class WriteError(LakebaseSparkError, RuntimeError):
    """A write failed after it started; the message says what the target holds and how to finish it."""
