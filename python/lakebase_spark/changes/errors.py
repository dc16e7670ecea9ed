"""The errors a change stream raises once it reads (slot and publication errors: ``postgres/slots.py``)."""

from __future__ import annotations

from ..errors import LakebaseSparkError

__all__ = ["ChangeStreamError", "SchemaChangedError", "SnapshotLostError", "TruncatedError"]


class ChangeStreamError(LakebaseSparkError):
    """A change stream cannot go on; the message says why and what to do."""


class SchemaChangedError(ChangeStreamError):
    """The table's columns changed since the stream started: its rows would no longer match its schema."""


class TruncatedError(ChangeStreamError):
    """The table was truncated: every row went without a delete a sink could apply."""


class SnapshotLostError(ChangeStreamError):
    """The stream's initial snapshot was cut short (the driver restarted while its first batch ran) and
    its exported snapshot is gone."""
