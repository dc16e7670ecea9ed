"""A Spark Connect server of pyspark's own (``start-connect-server.sh``) on ``local-cluster``, for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def event_log_conf(events: Path) -> tuple[str, ...]:
    """Settings for a server that writes its event log (what Spark's UI shows) uncompressed to ``events``."""
    events.mkdir()
    return (
        "spark.eventLog.enabled=true",
        f"spark.eventLog.dir=file://{events}",
        "spark.eventLog.compress=false",
    )


@contextmanager
def started_connect_server(tmp_path: Path, jars: Sequence[str], *conf: str) -> Iterator[str]:
    """A Connect server whose executors are two separate JVMs, given ``jars`` (none: no jar at all);
    yields its ``sc://`` address. ``conf`` holds more ``key=value`` settings."""
    import pyspark

    home = Path(pyspark.__file__).parent
    port = free_port()
    env = dict(
        os.environ,
        SPARK_HOME=str(home),
        SPARK_LOG_DIR=str(tmp_path / "logs"),
        SPARK_PID_DIR=str(tmp_path / "pids"),
        SPARK_IDENT_STRING=f"lakebase-test-{port}",
        PYSPARK_PYTHON=sys.executable,
    )
    start = [
        str(home / "sbin" / "start-connect-server.sh"),
        "--master", "local-cluster[2,1,1024]",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.executor.memory=768m",
    ]  # fmt: skip
    if jars:
        start += ["--jars", ",".join(jars), "--driver-class-path", os.pathsep.join(jars)]
    for setting in conf:
        start += ["--conf", setting]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        else:
            logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*"))
            pytest.fail(f"the Connect server did not listen on {port}: {logs[-3000:]}")
        yield f"sc://127.0.0.1:{port}"
    finally:
        subprocess.run(
            [str(home / "sbin" / "stop-connect-server.sh")],
            env=env,
            check=False,
            capture_output=True,
            timeout=120,
        )
