"""Calls into databricks-sdk, with its errors turned into ones that say what to fix.

Transient failures (429 with ``Retry-After``, 503, connection resets and timeouts) are retried by the
SDK itself, with jittered backoff, for up to the client's ``retry_timeout_seconds``: that is the
broker's retry budget, and the JVM's wait for the broker is sized from it. What reaches this module
is either permanent (401, 403, 404, 400) or a budget that ran out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from .errors import CredentialError, EndpointNotFoundError, InvalidRequestError, PermissionDeniedError

T = TypeVar("T")

#: Known causes of a refused credential request, by words in the workspace's message, and the fix.
#: From the Lakebase troubleshooting guide's table; matched case-insensitively.
PERMISSION_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("entitlement", "workspace access", "workspace-access"),
        'enable the "Workspace access" entitlement for this principal (workspace settings > Identity and '
        "access > the user or service principal > Entitlements)",
    ),
    (
        ("can_use", "can use", "permission on the database", "permission on the instance"),
        "grant the principal CAN USE (or CAN MANAGE) on the Lakebase project or instance",
    ),
    (
        ("invalid access token", "token is expired", "invalid token", "credentials"),
        "renew the workspace credentials the SDK uses (DATABRICKS_TOKEN, the OAuth client secret or "
        "`databricks auth login`)",
    ),
)


def permission_hint(message: str) -> str:
    lowered = message.lower()
    for words, fix in PERMISSION_HINTS:
        if any(word in lowered for word in words):
            return fix
    return (
        "check the Databricks authentication (host, token or service principal) and that the principal "
        "may use this Lakebase project or instance"
    )


#: Where the SDK's configuration dump starts in its error messages.
_CONFIG_DUMP = re.compile(r"\.?\s*Config: .*$", re.S)
MAX_SDK_MESSAGE = 240


def sdk_message(e: BaseException) -> str:
    """The workspace's own words from an SDK error, without the SDK's configuration dump, bounded."""
    text = _CONFIG_DUMP.sub("", str(e)).strip()
    return text if len(text) <= MAX_SDK_MESSAGE else text[: MAX_SDK_MESSAGE - 3] + "..."


def call_api(call: Callable[[], T], *, what: str, target: str | None = None) -> T:
    """Run an SDK call; turn its errors into ones that say what to fix, the fix first.

    A refusal (401/403/404/400) raises a :class:`~lakebase_spark.errors.WorkspaceRefusalError`
    subclass: no retry can get past it. What the SDK gave up retrying raises :class:`CredentialError`.
    """
    try:
        return call()
    except Exception as e:
        translated = _translated(e, what)
        if translated is None:
            raise
        raise translated from e


def _translated(e: Exception, what: str) -> Exception | None:
    # databricks-sdk is imported here, not at the top: the jar-free path's Python workers import this
    # module (through Target) but never call the workspace, and the SDK takes ~1.4 s to import.
    from databricks.sdk import errors as sdk_errors
    from databricks.sdk.errors import base as sdk_base

    if isinstance(e, sdk_errors.NotFound):
        return EndpointNotFoundError(
            "To fix: check the name (Autoscaling endpoints look like projects/<project>/branches/<branch>/"
            "endpoints/<endpoint>, Provisioned instances are plain instance names) and that it exists in "
            f"this workspace. Could not {what}: the workspace has no such resource ({sdk_message(e)})",
            status=404,
        )
    if isinstance(e, sdk_errors.Unauthenticated | sdk_errors.PermissionDenied):
        # The fix first: Spark shows the JVM's error after its own prefix and a stack trace, and the SDK's
        # own text ends with a dump of its configuration ("Config: host=...") that says nothing.
        status = 401 if isinstance(e, sdk_errors.Unauthenticated) else 403
        return PermissionDeniedError(
            f"To fix: {permission_hint(str(e))}. Could not {what}: the workspace refused the caller "
            f"(HTTP {status}): {sdk_message(e)}",
            status=status,
        )
    if isinstance(e, sdk_errors.BadRequest):
        return InvalidRequestError(
            f"To fix: check the request's parameters. Could not {what}: the workspace rejected it as "
            f"invalid (HTTP 400): {sdk_message(e)}",
            status=400,
        )
    if isinstance(e, sdk_base.DatabricksError):
        return CredentialError(f"could not {what}: {sdk_message(e)}")
    if isinstance(e, TimeoutError):
        # The SDK raises TimeoutError once its retries of a transient failure used up the budget.
        return CredentialError(
            f"could not {what}: the workspace kept failing transiently (rate limits, unavailability or "
            f"network errors) for the whole retry budget ({e}); retry later, or raise the client's "
            "retry_timeout_seconds"
        )
    return None
