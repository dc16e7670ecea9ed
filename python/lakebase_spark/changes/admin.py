"""A change stream's slot, from Python: list the slots of a database with the WAL each keeps, and drop
one (the README's recovery steps; ``lakebase-spark slots`` runs these). A slot no stream reads keeps its
WAL until it is dropped (Lakebase drops slots idle for about 40 hours)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..postgres import slots
from ..targets import DEFAULT_DATABASE

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

    from ..tokens.broker import TokenBroker

__all__ = ["drop_slot", "list_slots"]


def list_slots(
    endpoint: str | None = None,
    *,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    tokens: TokenBroker | None = None,
    workspace_client: WorkspaceClient | None = None,
) -> list[slots.SlotState]:
    """The logical replication slots of the database's server: name, active reader, confirmed position,
    WAL status and the WAL each keeps (``retained_bytes``)."""
    with _connect(endpoint, instance, database, tokens, workspace_client) as conn:
        return slots.list_slots(conn)


def drop_slot(
    slot: str,
    endpoint: str | None = None,
    *,
    instance: str | None = None,
    database: str = DEFAULT_DATABASE,
    tokens: TokenBroker | None = None,
    workspace_client: WorkspaceClient | None = None,
) -> bool:
    """Drop ``slot`` (no stream may be reading it); False if there was none. A stream whose slot is
    dropped cannot go on from its checkpoint: start it anew (a new checkpoint, a new snapshot)."""
    with _connect(endpoint, instance, database, tokens, workspace_client) as conn:
        return slots.drop_slot(conn, slot)


def _connect(
    endpoint: str | None,
    instance: str | None,
    database: str,
    tokens: TokenBroker | None,
    workspace_client: WorkspaceClient | None,
) -> Any:
    from ..postgres.connection import connect

    return connect(
        endpoint=endpoint,
        instance=instance,
        database=database,
        tokens=tokens,
        workspace_client=workspace_client,
        autocommit=True,
    )
