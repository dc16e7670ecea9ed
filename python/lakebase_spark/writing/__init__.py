"""Writes into Lakebase: a COPY writer on the executors, exactly once, in every save mode plus upsert.

- :func:`write`: batch writes (``writer.py``);
- :func:`foreach_batch`: a Structured Streaming sink, exactly once per micro-batch (``streaming.py``);
- ``tables.py``: the target table's columns and type checks; ``commits.py``: the commit log and its
  retention; ``staging.py``: staging tables; ``upsert.py``: upsert's checks and statement;
  ``jobs.py``: the Spark job; ``write_ids.py``: the write-id rule.
"""

from __future__ import annotations

from .jobs import COPY_SOURCE
from .results import WriteResult
from .streaming import foreach_batch
from .writer import write

__all__ = ["COPY_SOURCE", "WriteResult", "foreach_batch", "write"]
