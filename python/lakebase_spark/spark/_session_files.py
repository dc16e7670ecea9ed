"""Secrets a Spark session ships to its nodes as session files, never as options: a file's name can be
logged, its content is read where the job runs (Python workers through ``SparkFiles``, the JVM
provider through ``SessionFiles``)."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from ..sessions import is_connect

__all__ = ["FILE_PREFIX", "secret_file", "ship_secret"]

#: Every shipped secret's file name: this prefix and 32 hex digits (the JVM side checks the shape).
FILE_PREFIX = "lakebase-secret-"

_SECRET_DIRECTORY: list[str] = []
_SECRET_DIRECTORY_LOCK = threading.Lock()


def _secret_directory() -> str:
    import atexit
    import shutil
    import tempfile

    with _SECRET_DIRECTORY_LOCK:
        if not _SECRET_DIRECTORY:
            directory = tempfile.mkdtemp(prefix="lakebase-secrets-")  # mode 0700
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
            _SECRET_DIRECTORY.append(directory)
        return _SECRET_DIRECTORY[0]


def ship_secret(spark: Any, value: str) -> str:
    """Ship ``value`` to every node of ``spark``'s session as a file; returns its name (for ``Sealed``).

    The file stays (mode 0600, in a directory of this process removed at exit) because a classic
    session serves an added file from where it lies for as long as tasks fetch it. A value shipped to
    the session before is not shipped again: ``foreach_batch(..., jar_free=True)`` builds options for
    every micro-batch, and a stream of days would otherwise add a file a batch.
    """
    import weakref

    key = (id(spark), hashlib.sha256(value.encode("utf-8")).hexdigest())
    with _SHIPPED_LOCK:
        held = _SHIPPED.get(key)
        if held is not None and held[0]() is spark:
            return held[1]
    name, path = secret_file(value)
    if not is_connect(spark):
        spark.sparkContext.addFile(path)  # a classic session (3.5's has no addArtifacts)
    else:
        spark.addArtifacts(path, file=True)
    try:
        session = weakref.ref(spark)
    except TypeError:  # a session type without weak references: ship every time
        return name
    with _SHIPPED_LOCK:
        _SHIPPED[key] = (session, name)
    return name


def secret_file(value: str) -> tuple[str, str]:
    """Write ``value`` to a new private file (mode 0600); its name (what options carry) and path."""
    import os
    import uuid

    name = f"{FILE_PREFIX}{uuid.uuid4().hex}"
    path = os.path.join(_secret_directory(), name)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as f:
        f.write(value)
    return name, path


#: (id of the session, SHA-256 of the value) -> (the session, the name its file was shipped under).
_SHIPPED: dict[tuple[int, str], tuple[Any, str]] = {}
_SHIPPED_LOCK = threading.Lock()
