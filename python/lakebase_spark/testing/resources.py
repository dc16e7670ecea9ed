"""Lakebase resources of the emulated workspace: Autoscaling endpoints and Provisioned instances."""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

from ..targets import ENDPOINT_PATTERN, SEGMENT_PATTERN

__all__ = ["ENDPOINT_NAME_PATTERN", "INSTANCE_NAME_PATTERN", "Endpoint", "Instance", "Resources", "rfc3339"]

# The package's own name rules (targets.py): the emulator accepts exactly the names the client does.
ENDPOINT_NAME_PATTERN: Final = re.compile(ENDPOINT_PATTERN)
INSTANCE_NAME_PATTERN: Final = re.compile(SEGMENT_PATTERN)


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with milliseconds and ``Z``, as Databricks APIs write timestamps."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Endpoint:
    """A Lakebase Autoscaling compute endpoint; ``host`` includes the port (``127.0.0.1:<port>``)."""

    name: str
    uid: str
    host: str
    created: datetime
    #: A read replica (ENDPOINT_TYPE_READ_ONLY): the emulator's hot standby.
    read_only: bool = False

    def to_json(self, *, state: str = "ACTIVE") -> dict[str, Any]:
        """The body of ``GET /api/2.0/postgres/{name}``."""
        match = ENDPOINT_NAME_PATTERN.fullmatch(self.name)
        endpoint_id = match.group(3) if match else self.name.rsplit("/", 1)[-1]
        created = rfc3339(self.created)
        kind = "ENDPOINT_TYPE_READ_ONLY" if self.read_only else "ENDPOINT_TYPE_READ_WRITE"
        return {
            "name": self.name,
            "uid": self.uid,
            "parent": self.name.rsplit("/endpoints/", 1)[0],
            "create_time": created,
            "update_time": created,
            "spec": {
                "endpoint_type": kind,
                "autoscaling_limit_min_cu": 0.5,
                "autoscaling_limit_max_cu": 2.0,
                "suspend_timeout_duration": "300s",
            },
            "status": {
                "endpoint_id": endpoint_id,
                "endpoint_type": kind,
                "current_state": state,
                "autoscaling_limit_min_cu": 0.5,
                "autoscaling_limit_max_cu": 2.0,
                "disabled": False,
                "hosts": {"host": self.host},
                "suspend_timeout_duration": "300s",
            },
        }


@dataclass(frozen=True)
class Instance:
    """A Lakebase Provisioned database instance; ``read_write_dns`` includes the port."""

    name: str
    uid: str
    read_write_dns: str
    creator: str
    created: datetime

    def to_json(self, *, state: str = "AVAILABLE") -> dict[str, Any]:
        """The body of ``GET /api/2.0/database/instances/{name}``."""
        return {
            "name": self.name,
            "uid": self.uid,
            "state": state,
            "read_write_dns": self.read_write_dns,
            "capacity": "CU_1",
            "effective_capacity": "CU_1",
            "node_count": 1,
            "effective_node_count": 1,
            "pg_version": "PG_VERSION_15",
            "creator": self.creator,
            "creation_time": rfc3339(self.created),
            "stopped": False,
            "effective_stopped": False,
        }


class Resources:
    """Thread-safe registry of endpoints and instances, all served by the same Postgres server."""

    def __init__(self) -> None:
        # Guards both dictionaries and the set.
        self._lock = threading.Lock()
        self._endpoints: dict[str, Endpoint] = {}
        self._instances: dict[str, Instance] = {}
        #: Projects and instances on which CAN USE was revoked: "project <id>" or "instance <name>".
        self._revoked: set[str] = set()

    def add_endpoint(self, name: str, host: str, *, read_only: bool = False) -> Endpoint:
        """Register an endpoint (idempotent: an existing one is returned unchanged)."""
        if not ENDPOINT_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"endpoint name {name!r} is not of the form"
                " projects/<project>/branches/<branch>/endpoints/<endpoint>"
                " (ids: letters, digits, '-' or '_'); e.g. 'projects/demo/branches/main/endpoints/primary'"
            )
        with self._lock:
            existing = self._endpoints.get(name)
            if existing is None:
                existing = Endpoint(
                    name, f"ep-{uuid.uuid4().hex[:20]}", host, datetime.now(timezone.utc), read_only
                )
                self._endpoints[name] = existing
            return existing

    def add_instance(self, name: str, read_write_dns: str, creator: str) -> Instance:
        """Register an instance (idempotent: an existing one is returned unchanged)."""
        if not INSTANCE_NAME_PATTERN.fullmatch(name):
            raise ValueError(
                f"instance name {name!r} must be 1-63 letters, digits, '-' or '_',"
                " starting with a letter or digit"
            )
        with self._lock:
            existing = self._instances.get(name)
            if existing is None:
                existing = Instance(
                    name, str(uuid.uuid4()), read_write_dns, creator, datetime.now(timezone.utc)
                )
                self._instances[name] = existing
            return existing

    def endpoint(self, name: str) -> Endpoint | None:
        """The endpoint called ``name``, if any."""
        with self._lock:
            return self._endpoints.get(name)

    def instance(self, name: str) -> Instance | None:
        """The instance called ``name``, if any."""
        with self._lock:
            return self._instances.get(name)

    def set_can_use(self, scope: str, allowed: bool) -> None:
        """Grant or revoke CAN USE on ``scope`` ("project <id>" or "instance <name>") for every caller."""
        if not re.fullmatch(r"(project|instance) " + SEGMENT_PATTERN, scope):
            raise ValueError(f"scope must be 'project <id>' or 'instance <name>', got {scope!r}")
        with self._lock:
            if allowed:
                self._revoked.discard(scope)
            else:
                self._revoked.add(scope)

    def can_use(self, scope: str) -> bool:
        with self._lock:
            return scope not in self._revoked
