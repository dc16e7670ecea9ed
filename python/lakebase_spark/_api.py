"""Calls into databricks-sdk, with its errors turned into ones that say what to fix."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from databricks.sdk import errors as sdk_errors
from databricks.sdk.errors import base as _sdk_base

from .errors import CredentialError, EndpointNotFoundError, PermissionDeniedError

T = TypeVar("T")


def call_api(call: Callable[[], T], *, what: str, target: str | None = None) -> T:
    """Run an SDK call; turn its errors into ones that say what to fix."""
    try:
        return call()
    except sdk_errors.NotFound as e:
        raise EndpointNotFoundError(
            f"could not {what}: the workspace has no such resource ({e}). Check the name: "
            "Autoscaling endpoints look like projects/<project>/branches/<branch>/endpoints/"
            "<endpoint>, Provisioned instances are plain instance names."
        ) from e
    except (sdk_errors.Unauthenticated, sdk_errors.PermissionDenied) as e:
        raise PermissionDeniedError(
            f"could not {what}: the workspace refused the caller ({e}). Check the Databricks "
            "authentication (host, token or service principal) and that the principal may use "
            f"{target or 'this workspace'}."
        ) from e
    except _sdk_base.DatabricksError as e:
        raise CredentialError(f"could not {what}: {e}") from e
