"""Old parameter names kept working for a while, with a DeprecationWarning naming the new one."""

from __future__ import annotations

import warnings
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["renamed_workspace"]


def renamed_workspace(workspace_client: Any, workspace: Any) -> Any:
    """``workspace_client``, or the value of the deprecated ``workspace=`` (with a warning)."""
    if workspace is None:
        return workspace_client
    warnings.warn(
        "workspace= is deprecated: pass workspace_client= (the name every lakebase-spark call uses)",
        DeprecationWarning,
        stacklevel=3,
    )
    if workspace_client is not None and workspace_client is not workspace:
        raise InvalidArgumentError(
            "give workspace_client= only (workspace= is its old name)", argument="workspace"
        )
    return workspace
