"""Every error lakebase-spark raises. Messages name the thing, the value and the fix, never a secret."""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "CredentialError",
    "DatabaseConnectionError",
    "EndpointNotFoundError",
    "InvalidArgumentError",
    "InvalidEndpointNameError",
    "InvalidRequestError",
    "InvalidTableNameError",
    "JarNotFoundError",
    "LakebaseSparkError",
    "MissingDependencyError",
    "PermissionDeniedError",
    "TLSRequiredError",
    "WorkspaceRefusalError",
    "WriteError",
    "WriteInputError",
]


class LakebaseSparkError(Exception):
    """Base class of every error raised by lakebase-spark."""


class InvalidArgumentError(LakebaseSparkError, ValueError):
    """An argument of a lakebase-spark call is out of its range or contradicts another.

    ``argument`` names the parameter (``None`` when several are at fault together).
    """

    def __init__(self, message: str, *, argument: str | None = None) -> None:
        super().__init__(message)
        self.argument = argument


class InvalidEndpointNameError(LakebaseSparkError, ValueError):
    """An endpoint or instance name is not of the form the Lakebase API expects."""


class InvalidTableNameError(LakebaseSparkError, ValueError):
    """A table name does not parse by Postgres' rules, or names something Postgres would change."""


class TLSRequiredError(LakebaseSparkError, ValueError):
    """A connection setting would disable TLS, which Lakebase requires."""


class WorkspaceRefusalError(LakebaseSparkError):
    """The workspace refused a request (HTTP 4xx other than 429): retrying cannot help, a fix is needed.

    Not an outage: the broker never serves a cached token past a refusal of what it was asked for, and
    every JVM fails at once. ``status`` is the HTTP status (401, 403, 404, 400, ...; ``None`` if unknown):
    it says what was refused (the caller's identity, a permission, one resource).
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class EndpointNotFoundError(WorkspaceRefusalError, LookupError):
    """The workspace has no Lakebase endpoint or instance of that name (HTTP 404)."""


class PermissionDeniedError(WorkspaceRefusalError, PermissionError):
    """The workspace refused the caller (HTTP 401/403): authentication or entitlement to fix."""


class InvalidRequestError(WorkspaceRefusalError, ValueError):
    """The workspace rejected a credential request as invalid (HTTP 400 and other 4xx but 429)."""


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
