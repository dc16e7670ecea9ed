"""The pytest plugin the package ships: the README's example test (examples/) runs with its fixtures,
in a pytest process of its own (its own emulator and Spark), as a user's suite would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..jobs import run_python

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]


def test_the_example_job_test_passes_with_the_plugin_fixtures() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABRICKS_")}
    done = run_python(
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir",
        "examples",
        "examples",
        env=env,
        cwd=ROOT,
        timeout=600,
    )
    assert "1 passed" in done.stdout


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    from importlib.metadata import entry_points

    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("lakebase_spark") == "lakebase_spark.testing.pytest_plugin"


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    # pytest loads the plugin in every run in an environment with the package: it (and the package
    # root) must not import the SDK, psycopg, cryptography or Spark before a fixture is asked for.
    code = (
        "import sys, lakebase_spark.testing.pytest_plugin, lakebase_spark\n"
        "heavy = {'databricks', 'psycopg', 'cryptography', 'pyspark', 'requests'}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
        "lakebase_spark.read, lakebase_spark.testing.LakebaseEmulator\n"  # first use imports them
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = done.stdout.splitlines()
    assert before == "[]"
    assert "psycopg" in after  # the SDK waits until something calls the workspace (see _api.py)


def test_the_package_exports_resolve_on_first_use() -> None:
    import lakebase_spark
    import lakebase_spark.testing

    for package in (lakebase_spark, lakebase_spark.testing):
        for name in package.__all__:
            assert getattr(package, name) is not None, name
        assert set(package.__all__) <= set(dir(package))
        with pytest.raises(AttributeError, match="no attribute 'nope'"):
            _ = package.nope
