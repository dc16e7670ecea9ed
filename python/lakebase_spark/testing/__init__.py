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
