"""A job under ``spark-submit``, where the driver JVM starts before the script: configure() cannot add
jars then, so it must fail at once with the flags to add, and the job must run with them. And a plain
``python`` job that forgot configure() fails at lakebase_options with the fix, not at the first read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyspark
import pytest

from lakebase_spark.cli import submit_args

from ..conftest import DATABASE, ENDPOINT
from ..jobs import HERE

pytestmark = [pytest.mark.spark, pytest.mark.postgres, pytest.mark.e2e]

SPARK_SUBMIT = Path(pyspark.__file__).parent / "bin" / "spark-submit"


def run(emulator, argv: list[str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "PYSPARK_GATEWAY"))}
    python_dir = str(Path(sys.executable).parent)
    env.update(
        DATABRICKS_HOST=emulator.host,
        DATABRICKS_TOKEN=emulator.pat,
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PATH=python_dir + os.pathsep + env.get("PATH", ""),
    )
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[-1])


def job(*flags: str) -> list[str]:
    return [str(HERE / "submit_job.py"), ENDPOINT, DATABASE, *flags]


def test_spark_submit_without_the_jars_fails_at_once_naming_the_flags(emulator) -> None:
    result = run(emulator, [str(SPARK_SUBMIT), "--master", "local[2]", *job()])
    error = str(result["error"])
    assert error.startswith("JarNotFoundError: the Spark driver JVM, started by spark-submit")
    assert "io.lakebase.spark.LakebaseConnectionProvider" in error
    assert f"spark-submit {' '.join(submit_args())}" in error


def test_spark_submit_with_the_printed_flags_runs_the_job(emulator) -> None:
    result = run(emulator, [str(SPARK_SUBMIT), "--master", "local[2]", *submit_args(), *job()])
    assert result == {"rows": 100}


def test_a_plain_python_job_without_configure_fails_at_lakebase_options(emulator) -> None:
    result = run(emulator, [sys.executable, *job("--no-configure")])
    error = str(result["error"])
    assert "a SparkSession built without lakebase_spark.configure" in error
    assert "cannot load io.lakebase.spark.LakebaseConnectionProvider" in error
