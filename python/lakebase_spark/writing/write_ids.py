"""The rule for a write id, the same on both sides (``WriteOptions.writeIdProblem`` in the JVM): 1 to 512
characters (Unicode code points, so an emoji counts once), none of them NUL, and valid Unicode (no lone
surrogate: Postgres stores text as UTF-8). tests/test_contract.py runs both on the same ids."""

from __future__ import annotations

from ..errors import WriteInputError

__all__ = ["MAX_WRITE_ID", "QUERY_ID_PROPERTY", "check_write_id", "stream_write_id", "write_id_problem"]

#: Characters (code points) a write id may have.
MAX_WRITE_ID = 512

#: The local property Spark's stream execution sets on its thread and gives the tasks it runs
#: (``StreamExecution.QUERY_ID_KEY``): the query's id, stable across restarts from one checkpoint.
QUERY_ID_PROPERTY = "sql.streaming.queryId"


def write_id_problem(write_id: object) -> str | None:
    """Why ``write_id`` is not a valid write id, or None."""
    if not isinstance(write_id, str) or not write_id:
        return "must be a non-empty string"
    if len(write_id) > MAX_WRITE_ID:
        return f"has {len(write_id)} characters, more than {MAX_WRITE_ID}"
    if "\x00" in write_id:
        return "contains a NUL character"
    try:
        write_id.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (a lone surrogate)"
    return None


def check_write_id(write_id: str) -> str:
    problem = write_id_problem(write_id)
    if problem:
        raise WriteInputError(
            f"write_id {problem}: a write id is 1 to {MAX_WRITE_ID} characters without NUL; nothing was "
            "written"
        )
    return write_id


def stream_write_id(query_id: str, batch_id: int) -> str:
    """The write id of one micro-batch of one streaming query (the same for every streaming sink here)."""
    return f"stream/{query_id}/{batch_id}"
