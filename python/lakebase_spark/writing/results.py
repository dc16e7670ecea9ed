"""What a write returns."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WriteResult"]


@dataclass(frozen=True)
class WriteResult:
    """What a write did."""

    table: str
    write_id: str
    mode: str
    #: Rows written (upsert: rows inserted or updated); for a skipped write, what the first run wrote.
    rows: int
    #: True when nothing was done: the write id had already finished, or ``ignore`` found the table.
    skipped: bool = False
