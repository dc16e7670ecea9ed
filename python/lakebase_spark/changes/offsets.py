"""A change stream's offsets: where in the table's history a micro-batch starts or ends.

Spark keeps offsets as JSON and compares them as strings, so each is built with one key order. A
stream starts at ``START`` (a constant: Spark asks for the initial offset again after a restart), its
first batch ends at ``SNAPSHOT`` (every row of the table at the slot's start, the slot's consistent
point), and every later batch ends at a ``CHANGES`` offset: the changes of the transactions that
committed from the previous end up to (not including) this LSN. ``latest`` streams skip the snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..postgres.pgoutput import lsn_text, parse_lsn
from .errors import ChangeStreamError

__all__ = ["CHANGES", "SNAPSHOT", "START", "ChangeOffset", "Phase", "XminOffset"]

Phase = Literal["start", "snapshot", "changes"]
START: Phase = "start"
SNAPSHOT: Phase = "snapshot"
CHANGES: Phase = "changes"


@dataclass(frozen=True)
class ChangeOffset:
    phase: Phase
    #: START: 0; SNAPSHOT: the slot's consistent point; CHANGES: the first LSN after the batch.
    lsn: int
    #: The stream's columns (``TableShape.fingerprint``), so a checkpoint pins them: a stream restarted
    #: after the table changed is refused, not given rows of another shape. Empty at START.
    shape: str = ""

    def to_json(self) -> dict[str, str]:
        return {"phase": self.phase, "lsn": lsn_text(self.lsn), "shape": self.shape}

    @classmethod
    def of(cls, offset: dict[str, Any]) -> ChangeOffset:
        phase, lsn, shape = offset.get("phase"), offset.get("lsn"), offset.get("shape", "")
        if phase not in (START, SNAPSHOT, CHANGES) or not isinstance(lsn, str) or not isinstance(shape, str):
            raise ChangeStreamError(
                f"the checkpoint holds an offset this change stream did not write ({offset!r}): start the "
                "stream with a checkpoint of its own"
            )
        return cls(phase, parse_lsn(lsn), shape)

    @classmethod
    def start(cls) -> ChangeOffset:
        return cls(START, 0)


@dataclass(frozen=True)
class XminOffset:
    """An offset of a slot-free stream (``mode=xmin``): batches end at transaction-id horizons.

    ``START`` (0) before the first batch; then ``CHANGES`` at a horizon: the batch that ends there
    holds the rows whose current version a transaction with an id from the previous end up to (not
    including) this one wrote. The first batch of a ``snapshot`` stream starts at id 0: every row.
    """

    phase: Phase
    xid: int
    shape: str = ""

    def to_json(self) -> dict[str, str]:
        return {"mode": "xmin", "phase": self.phase, "xid": str(self.xid), "shape": self.shape}

    @classmethod
    def of(cls, offset: dict[str, Any]) -> XminOffset:
        phase, xid, shape = offset.get("phase"), offset.get("xid"), offset.get("shape", "")
        if (
            offset.get("mode") != "xmin"
            or phase not in (START, CHANGES)
            or not isinstance(xid, str)
            or not xid.isdigit()
            or not isinstance(shape, str)
        ):
            raise ChangeStreamError(
                f"the checkpoint holds an offset this change stream (mode=xmin) did not write ({offset!r}): "
                "start the stream with a checkpoint of its own"
            )
        return cls(phase, int(xid), shape)

    @classmethod
    def start(cls) -> XminOffset:
        return cls(START, 0)
