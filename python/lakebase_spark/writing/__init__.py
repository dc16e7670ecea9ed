"""Writes into Lakebase: a COPY writer on the executors, exactly once, in every save mode plus upsert.

- :func:`write`: batch writes (``writer.py``);
- :func:`foreach_batch`: a Structured Streaming sink, exactly once per micro-batch (``streaming.py``);
- ``tables.py``: the target table's name, columns and type checks; ``commits.py``: the commit log.
"""

from __future__ import annotations

from .streaming import foreach_batch
from .writer import COPY_SOURCE, WriteResult, write

__all__ = ["COPY_SOURCE", "WriteResult", "foreach_batch", "write"]
