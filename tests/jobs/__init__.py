"""Spark jobs the tests run in processes of their own (a master of their own, executors that may be
killed), and how they are run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def run_job(
    script: str,
    args: list[str],
    *,
    env: dict[str, str],
    signal: Path,
    during: Callable[[Path], None] | None = None,
    timeout: float = 600,
) -> tuple[dict[str, Any], str]:
    """Run ``jobs/<script>`` with ``args``; ``during(signal)`` runs meanwhile (the job writes ``signal``
    when the moment to inject a fault has come). Returns the job's last JSON line and its stderr."""
    job = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        env=dict(os.environ, **env, LAKEBASE_TEST_SIGNAL=str(signal), PYSPARK_PYTHON=sys.executable),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if during is not None:
            during(signal)
        stdout, stderr = job.communicate(timeout=timeout)
    finally:
        job.kill()
    assert job.returncode == 0, stderr[-4000:]
    return json.loads(stdout.strip().splitlines()[-1]), stderr
