"""How to get a database token: one call to the workspace's credential API for an Autoscaling endpoint
(``postgres``) or a Provisioned instance (``database``), its expiry read from either answer. When to
call it (refresh, stale serving, refusals) is the broker's business (:mod:`.broker`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from .._api import call_api
from ..errors import CredentialError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = ["Api", "mint"]

Api = Literal["postgres", "database"]


def mint(workspace: WorkspaceClient, api: Api, target: str) -> tuple[str, float]:
    """A new token for ``target`` and when it expires (seconds since the epoch); refusals and outages
    raise as :func:`._api.call_api` maps them."""
    if api == "postgres":
        pg = call_api(
            lambda: workspace.postgres.generate_database_credential(endpoint=target),
            what=f"mint a database credential for endpoint {target!r}",
            target=target,
        )
        token, expires_at = pg.token, _timestamp_seconds(pg.expire_time)
    else:
        db = call_api(
            lambda: workspace.database.generate_database_credential(
                instance_names=[target], request_id=str(uuid.uuid4())
            ),
            what=f"mint a database credential for instance {target!r}",
            target=target,
        )
        token = db.token
        expires_at = _rfc3339_seconds(db.expiration_time) if db.expiration_time else None
    if not token or expires_at is None:
        raise CredentialError(
            f"the workspace {workspace.config.host} answered the credential request for {target!r} "
            "without a token or an expiry time"
        )
    return token, expires_at


def _timestamp_seconds(ts: object) -> float | None:
    """Seconds since the epoch of a protobuf ``Timestamp`` as the SDK returns it."""
    if ts is None:
        return None
    seconds = getattr(ts, "seconds", None)
    nanos = getattr(ts, "nanos", 0)
    if isinstance(seconds, int):
        return seconds + nanos / 1e9
    return _rfc3339_seconds(str(ts))


def _rfc3339_seconds(text: str) -> float:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()
