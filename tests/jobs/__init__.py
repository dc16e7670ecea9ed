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


def run_python(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    must_pass: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``python <args>`` (this interpreter, the same for Spark's Python workers) as a user would run it,
    output captured; with ``must_pass`` a non-zero exit fails the test with the end of its output."""
    done = subprocess.run(
        [sys.executable, *args],
        env=dict(os.environ if env is None else env, PYSPARK_PYTHON=sys.executable),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert not must_pass or done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def run_job(
    script: str,
    args: list[str],
    *,
    env: dict[str, str],
    signal: Path | None = None,
    during: Callable[[Path], None] | None = None,
    timeout: float = 600,
) -> tuple[dict[str, Any], str]:
    """Run ``jobs/<script>`` with ``args``; ``during(signal)`` runs meanwhile (the job writes ``signal``
    when the moment to inject a fault has come). Returns the job's last JSON line and all it printed
    besides (stdout and stderr, for leak checks); a failed job fails the test with its stderr, Java stack
    frames left out."""
    extra = {"LAKEBASE_TEST_SIGNAL": str(signal)} if signal is not None else {}
    job = subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        env=dict(os.environ, **env, **extra, PYSPARK_PYTHON=sys.executable),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if during is not None:
            assert signal is not None, "during= needs signal="
            during(signal)
        stdout, stderr = job.communicate(timeout=timeout)
    finally:
        job.kill()
    problems = [line for line in stderr.splitlines() if not line.strip().startswith("at ")]
    assert job.returncode == 0, "\n".join(problems)[-4000:]
    *printed, result = stdout.strip().splitlines()
    return json.loads(result), "\n".join(printed) + stderr  # the result may name secrets to search for
