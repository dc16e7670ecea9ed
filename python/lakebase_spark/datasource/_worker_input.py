"""Whether a Python worker's input from Spark arrived whole: the jar-free writer commits only then.

A Python data source's ``write(iterator)`` reads its rows as an Arrow stream from the executor JVM.
When the task fails upstream of the writer (a UDF raises, a shuffle fetch fails, the task is killed),
the JVM does not send the stream's end marker: it fails the task and closes the worker's socket, and
pyarrow ends the stream at that end of file exactly as at the marker. The iterator just stops, and a
writer that commits what it got commits part of its partition (found on Spark 4.3 with a UDF failing on
its first attempt: the retry then saw the partition's commit marker and skipped the rest).

So, once the iterator has ended, the writer looks at the socket itself. After a whole input the JVM is
still connected, waiting for the task's output (and may already have sent its end-of-stream code);
after a cut one it has hung up. ``recv(MSG_PEEK | MSG_DONTWAIT)`` tells the two apart without reading
anything or waiting. The socket is found through the worker's own frames (``pyspark.worker`` keeps it
as ``input_data_stream`` from Spark 4.3 on and as ``infile`` before); a Spark build that keeps it
elsewhere gets ``None``, and the writer's commit log then treats the partition as unverified (see
``writer.py``): a later attempt with more rows replaces it.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from typing import Any

__all__ = ["input_arrived"]

#: The names pyspark's worker gives the stream it reads a task's input from (4.3+, and 4.0-4.2).
_STREAM_NAMES = ("input_data_stream", "infile")


def input_arrived() -> bool | None:
    """After the task's input iterator ended: True if the whole input arrived (the JVM is still
    connected), False if the JVM hung up (the task failed or was killed upstream), None if this
    process is not a Spark Python worker whose input socket can be found."""
    stream = _worker_input_stream()
    if stream is None:
        return None
    try:
        fd = stream.fileno()
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            return None
        probe = socket.socket(fileno=os.dup(fd))
    except (OSError, ValueError, AttributeError):
        return None
    try:
        data = probe.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True  # connected, nothing unread: the JVM waits for this task's output
    except OSError:
        return False  # reset: the JVM is gone
    finally:
        probe.close()  # the duplicate only; the worker's own descriptor stays open
    return bool(data)  # unread bytes (the end-of-stream code): connected; b"": it hung up


def _worker_input_stream() -> Any:
    """The innermost of pyspark's own frames that holds the worker's input stream, or None."""
    frame = sys._getframe(1)
    while frame is not None:
        if str(frame.f_globals.get("__name__", "")).startswith("pyspark."):
            names = frame.f_code.co_varnames + frame.f_code.co_cellvars + frame.f_code.co_freevars
            for name in _STREAM_NAMES:
                if name in names:
                    stream = frame.f_locals.get(name)
                    if stream is not None and hasattr(stream, "fileno"):
                        return stream
        frame = frame.f_back  # type: ignore[assignment]
    return None
