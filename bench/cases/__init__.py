"""The thirteen cases, in the order they run and appear in results.md: ``(key, run)`` pairs."""

from __future__ import annotations

from collections.abc import Callable

from ..context import Context
from ..results import CaseResult
from . import (
    balance,
    changes,
    connections,
    copyread,
    credentials,
    herd,
    jarfree,
    read,
    reads,
    scaling,
    sqlinsert,
    upsert,
    write,
)

__all__ = ["CASES"]

CASES: list[tuple[str, Callable[[Context], CaseResult]]] = [
    ("credentials", credentials.run),
    ("connections", connections.run),
    ("read", read.run),
    ("balance", balance.run),
    ("write", write.run),
    ("upsert", upsert.run),
    ("scaling", scaling.run),
    ("herd", herd.run),
    ("jarfree", jarfree.run),
    ("reads", reads.run),
    ("changes", changes.run),
    ("copyread", copyread.run),
    ("sqlinsert", sqlinsert.run),
]
