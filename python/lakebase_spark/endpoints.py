"""Lakebase target names and where they live: Autoscaling endpoints and Provisioned instances."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._api import call_api
from .errors import CredentialError, InvalidEndpointNameError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = [
    "Address",
    "resolve_endpoint",
    "resolve_instance",
    "validate_endpoint_name",
    "validate_instance_name",
]

_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}"
_ENDPOINT = re.compile(rf"projects/({_SEGMENT})/branches/({_SEGMENT})/endpoints/({_SEGMENT})")
_INSTANCE = re.compile(_SEGMENT)
POSTGRES_PORT = 5432


@dataclass(frozen=True)
class Address:
    """Where Postgres listens for a Lakebase target."""

    host: str
    port: int = POSTGRES_PORT

    @classmethod
    def parse(cls, text: str, *, port: int | None = None) -> Address:
        """``host`` or ``host:port`` (the local emulator cannot use 5432, so it says which port)."""
        host, sep, tail = text.rpartition(":")
        if sep and tail.isdigit() and "]" not in tail:
            return cls(host.strip("[]"), port or int(tail))
        return cls(text, port or POSTGRES_PORT)


def validate_endpoint_name(name: str) -> str:
    if not isinstance(name, str) or not _ENDPOINT.fullmatch(name):
        raise InvalidEndpointNameError(
            f"malformed Lakebase endpoint name {name!r}: expected "
            "projects/<project>/branches/<branch>/endpoints/<endpoint> "
            "(for a Provisioned instance pass instance=<name> instead)"
        )
    return name


def validate_instance_name(name: str) -> str:
    if not isinstance(name, str) or not _INSTANCE.fullmatch(name):
        raise InvalidEndpointNameError(
            f"malformed Lakebase instance name {name!r}: expected a plain instance name such as "
            "'my-instance' (for an Autoscaling endpoint pass endpoint=projects/.../endpoints/... )"
        )
    return name


def resolve_endpoint(workspace: WorkspaceClient, endpoint: str, *, port: int | None = None) -> Address:
    """The read-write host of an Autoscaling endpoint (``status.hosts.host``)."""
    validate_endpoint_name(endpoint)
    found = call_api(
        lambda: workspace.postgres.get_endpoint(name=endpoint),
        what=f"look up endpoint {endpoint!r}",
        target=endpoint,
    )
    host = found.status.hosts.host if found.status and found.status.hosts else None
    if not host:
        raise CredentialError(
            f"endpoint {endpoint!r} has no host yet (state "
            f"{found.status.current_state if found.status else 'unknown'}); wait until it is ACTIVE"
        )
    return Address.parse(host, port=port)


def resolve_instance(workspace: WorkspaceClient, instance: str, *, port: int | None = None) -> Address:
    """The read-write DNS name of a Provisioned instance (``read_write_dns``)."""
    validate_instance_name(instance)
    found = call_api(
        lambda: workspace.database.get_database_instance(name=instance),
        what=f"look up instance {instance!r}",
        target=instance,
    )
    if not found.read_write_dns:
        raise CredentialError(
            f"instance {instance!r} has no read-write DNS name yet (state {found.state}); "
            "wait until it is AVAILABLE"
        )
    return Address.parse(found.read_write_dns, port=port)
