"""Every error lakebase-spark raises. Messages name the thing, the value and the fix, never a secret."""

from __future__ import annotations

__all__ = [
    "BrokerError",
    "CredentialError",
    "EndpointNotFoundError",
    "InvalidEndpointNameError",
    "JarNotFoundError",
    "LakebaseSparkError",
    "PermissionDeniedError",
    "TLSRequiredError",
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
