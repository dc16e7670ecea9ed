"""A local Lakebase emulator for tests and demos: a Databricks workspace API in front of a real Postgres.

>>> from lakebase_spark.testing import LakebaseEmulator
>>> endpoint = "projects/demo/branches/main/endpoints/primary"
>>> with LakebaseEmulator(token_ttl=600) as emu:  # doctest: +SKIP
...     host = emu.create_endpoint(endpoint)  # "127.0.0.1:<port>"
...     w = emu.workspace_client()  # a real databricks.sdk WorkspaceClient
...     token = w.postgres.generate_database_credential(endpoint=endpoint).token

Run ``python -m lakebase_spark.testing`` to start one from a shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _lazy

if TYPE_CHECKING:
    from .api import Route
    from .emulator import DEFAULT_ENDPOINT, DEFAULT_INSTANCE, SECRET_PREFIXES, LakebaseEmulator
    from .errors import (
        BerDecodeError,
        EmulatorError,
        EmulatorNotRunningError,
        PostgresNotFoundError,
        PostgresStartError,
    )
    from .faults import Faults, InjectedError
    from .identity import Principal, PrincipalKind
    from .stats import ApiStats
    from .tokens import TOKEN_PREFIX, LoginFailure, TokenStats, TokenStore

# Imported on first use: the pytest plugin lives in this package, and every pytest run in an
# environment with lakebase-spark loads it.
_LAZY = {
    "ApiStats": ".stats",
    "BerDecodeError": ".errors",
    "DEFAULT_ENDPOINT": ".emulator",
    "DEFAULT_INSTANCE": ".emulator",
    "EmulatorError": ".errors",
    "EmulatorNotRunningError": ".errors",
    "Faults": ".faults",
    "InjectedError": ".faults",
    "LakebaseEmulator": ".emulator",
    "LoginFailure": ".tokens",
    "PostgresNotFoundError": ".errors",
    "PostgresStartError": ".errors",
    "Principal": ".identity",
    "PrincipalKind": ".identity",
    "Route": ".api",
    "SECRET_PREFIXES": ".emulator",
    "TOKEN_PREFIX": ".tokens",
    "TokenStats": ".tokens",
    "TokenStore": ".tokens",
}

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_INSTANCE",
    "SECRET_PREFIXES",
    "TOKEN_PREFIX",
    "ApiStats",
    "BerDecodeError",
    "EmulatorError",
    "EmulatorNotRunningError",
    "Faults",
    "InjectedError",
    "LakebaseEmulator",
    "LoginFailure",
    "PostgresNotFoundError",
    "PostgresStartError",
    "Principal",
    "PrincipalKind",
    "Route",
    "TokenStats",
    "TokenStore",
]

__getattr__, __dir__ = _lazy.exports(__name__, _LAZY, __all__)
