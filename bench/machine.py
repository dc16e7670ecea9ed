"""Where and with what a run happened: the machine and the versions of everything on the path."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyspark

import lakebase_spark

from .env import BenchEnv

__all__ = ["machine", "versions"]


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(_meminfo_kib("MemTotal") / 2**20, 1),
        "cpu": _cpu_model(),
        "os": platform.platform(),
    }


def versions(env: BenchEnv) -> dict[str, Any]:
    jvm: Any = env.spark.sparkContext._jvm
    system = jvm.java.lang.System
    with env.admin() as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return {
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "java": f"{system.getProperty('java.vm.name')} {system.getProperty('java.runtime.version')}",
        "postgres": row[0] if row else None,
        "psql": (_output(["psql", "--version"]) or "").removeprefix("psql (PostgreSQL) ") or None,
        "pgjdbc": str(jvm.org.postgresql.util.DriverInfo.DRIVER_VERSION),
        "lakebase-spark": lakebase_spark.__version__,
        "lakebase-spark commit": _commit(),
        "databricks-sdk": importlib.metadata.version("databricks-sdk"),
        "psycopg": importlib.metadata.version("psycopg"),
    }


def _meminfo_kib(field: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _output(argv: list[str]) -> str | None:
    exe = shutil.which(argv[0])
    if exe is None:
        return None
    done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, check=False)  # noqa: S603
    return done.stdout.strip() or None


def _commit() -> str | None:
    """The repository's commit (``-dirty`` with uncommitted changes), if run from a git checkout."""
    commit = _output(["git", "rev-parse", "--short", "HEAD"])
    if commit is None:
        return None
    status = _output(["git", "status", "--porcelain", "--untracked-files=no"])
    return f"{commit}-dirty" if status else commit
