"""What a job connects to: a Lakebase target (an Autoscaling endpoint or a Provisioned instance), its
name rules, and where its Postgres listens. ``Target`` mirrors the JVM's ``LakebaseTarget``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from ._api import call_api
from .errors import CredentialError, InvalidArgumentError, InvalidEndpointNameError

if TYPE_CHECKING:
    from databricks.sdk import WorkspaceClient

__all__ = [
    "DEFAULT_DATABASE",
    "Address",
    "Target",
    "validate_endpoint_name",
    "validate_instance_name",
]

#: The database every Lakebase endpoint and instance has.
DEFAULT_DATABASE = "databricks_postgres"

#: The broker's query parameter for each kind, too (``LakebaseTarget.Kind`` on the JVM side).
Kind = Literal["endpoint", "instance"]


class TargetKeywords(TypedDict):
    """The ``endpoint=`` / ``instance=`` keyword arguments of the package's functions."""

    endpoint: str | None
    instance: str | None


# Name rules, shared with the JVM's LakebaseOptions (tests/test_contract.py compares them).
SEGMENT_PATTERN = "[A-Za-z0-9][A-Za-z0-9_-]{0,62}"
ENDPOINT_PATTERN = f"projects/({SEGMENT_PATTERN})/branches/({SEGMENT_PATTERN})/endpoints/({SEGMENT_PATTERN})"
_ENDPOINT = re.compile(ENDPOINT_PATTERN)
_INSTANCE = re.compile(SEGMENT_PATTERN)
POSTGRES_PORT = 5432


@dataclass(frozen=True)
class Address:
    """Where Postgres listens for a Lakebase target: ``lakebase_options``, ``connect`` and
    ``export_snapshot`` take one (``address=``) to skip the workspace lookup when the caller made it."""

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


@dataclass(frozen=True)
class Target:
    """An Autoscaling endpoint or a Provisioned instance, by a validated name.

    Every place that takes ``endpoint=`` / ``instance=`` turns them into one of these with
    :meth:`of`, so the "exactly one" rule, the name rules, which credential API mints for it and
    how its host is found live here; a new kind (a read replica, a branch) is added here and in
    ``LakebaseTarget.java``.
    """

    kind: Kind
    name: str

    def __post_init__(self) -> None:
        if self.kind == "endpoint":
            validate_endpoint_name(self.name)
        elif self.kind == "instance":
            validate_instance_name(self.name)
        else:
            raise InvalidArgumentError(
                f"unknown Lakebase target kind {self.kind!r}: 'endpoint' or 'instance'", argument="kind"
            )

    @classmethod
    def of(cls, endpoint: str | None = None, instance: str | None = None) -> Target:
        """The target named by exactly one of ``endpoint`` (Autoscaling) and ``instance`` (Provisioned)."""
        if (endpoint is None) == (instance is None):
            raise InvalidArgumentError(
                "give exactly one of endpoint='projects/<p>/branches/<b>/endpoints/<e>' "
                "(Lakebase Autoscaling) or instance='<name>' (Lakebase Provisioned)"
            )
        return cls("endpoint", endpoint) if endpoint is not None else cls("instance", str(instance))

    @property
    def api(self) -> Literal["postgres", "database"]:
        """The workspace API family that mints its credentials and describes it."""
        return "postgres" if self.kind == "endpoint" else "database"

    @property
    def permission_scope(self) -> str:
        """What the workspace grants access to (CAN USE) for this target: an endpoint's project, or the
        instance itself. A permission refused for one project refuses nothing else."""
        if self.kind == "endpoint":
            return "project " + self.name.split("/", 2)[1]
        return f"instance {self.name}"

    def keywords(self) -> TargetKeywords:
        """``endpoint=`` and ``instance=`` for the package's functions (one of them ``None``)."""
        return {
            "endpoint": self.name if self.kind == "endpoint" else None,
            "instance": self.name if self.kind == "instance" else None,
        }

    def resolve(self, workspace: WorkspaceClient, *, port: int | None = None) -> Address:
        """Where its Postgres listens, by one workspace API call: an endpoint's read-write host
        (``status.hosts.host``), an instance's read-write DNS name (``read_write_dns``)."""
        name = self.name
        if self.kind == "endpoint":
            found: Any = call_api(
                lambda: workspace.postgres.get_endpoint(name=name), what=f"look up {self}", target=name
            )
            host = found.status.hosts.host if found.status and found.status.hosts else None
            state, ready = (found.status.current_state if found.status else "unknown"), "ACTIVE"
        else:
            found = call_api(
                lambda: workspace.database.get_database_instance(name=name),
                what=f"look up {self}",
                target=name,
            )
            host, state, ready = found.read_write_dns, found.state, "AVAILABLE"
        if not host:
            raise CredentialError(f"{self} has no host yet (state {state}); wait until it is {ready}")
        return Address.parse(host, port=port)

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}"
