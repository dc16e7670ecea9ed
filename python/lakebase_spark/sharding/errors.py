"""Every error the shard map raises. Messages name the thing, the value and the fix."""

from __future__ import annotations

from ..errors import DatabaseConnectionError, LakebaseSparkError
from ..errors import MissingDependencyError as _MissingDependencyError

__all__ = [
    "InvalidRangeError",
    "InvalidShardMapError",
    "KeyNotMappedError",
    "KeyTypeError",
    "MappingNotFoundError",
    "MappingOfflineError",
    "MappingValidationError",
    "MissingDependencyError",
    "RangeOverlapError",
    "ShardConnectionError",
    "ShardMapError",
    "ShardMapNotFoundError",
    "ShardMapVersionConflictError",
    "ShardedReadError",
    "UnknownShardError",
    "UnroutableRowsError",
]


class ShardMapError(LakebaseSparkError):
    """Base class of every shard map error."""


class KeyTypeError(ShardMapError, TypeError):
    """A key value does not fit the shard map's key type (wrong type, out of range, not representable)."""


class InvalidShardMapError(ShardMapError, ValueError):
    """A shard map definition is malformed: a name, key type, shard, id or document field."""


class InvalidRangeError(ShardMapError, ValueError):
    """A range is empty or inverted, or a split or merge does not fit the ranges it names."""


class RangeOverlapError(ShardMapError, ValueError):
    """Two ranges of one shard map would share keys."""


class UnknownShardError(ShardMapError, LookupError):
    """A mapping or call names a shard the shard map does not have."""


class MappingNotFoundError(ShardMapError, LookupError):
    """No mapping of the shard map has that id."""


class KeyNotMappedError(ShardMapError, LookupError):
    """No range of the shard map contains the key."""


class MappingOfflineError(ShardMapError, RuntimeError):
    """The range holding the key is offline (being moved or repaired)."""


class MappingValidationError(ShardMapError, RuntimeError):
    """A shard's local map does not hold the mapping the global map routes to it, or holds it offline."""


class ShardConnectionError(ShardMapError, DatabaseConnectionError):
    """A shard's database refused or failed the connection (the message never holds the token)."""


class ShardMapNotFoundError(ShardMapError, LookupError):
    """No shard map of that name is stored in the database."""


class ShardMapVersionConflictError(ShardMapError, RuntimeError):
    """The stored shard map changed since it was read (optimistic concurrency)."""


#: The package's one error for a missing optional package (kept here under its old import path).
MissingDependencyError = _MissingDependencyError


class ShardedReadError(ShardMapError, ValueError):
    """A sharded read cannot be planned as asked (table, key column, types, schemas)."""


class UnroutableRowsError(ShardMapError, ValueError):
    """Some rows of a sharded write map to no online shard; nothing was written."""
