"""What a Python worker imports to run the jar-free source: every planning call and every task starts
a Python process that unpickles the source and imports its module, so an import there is paid many
times per job. databricks-sdk (~1.4 s to import) belongs to the driver, which mints; workers only log
in with what they were given."""

from __future__ import annotations

import pytest

from ..jobs import run_python

#: The modules Spark's Python workers import for the jar-free source's reads, writes and streams.
WORKER_MODULES = [
    "lakebase_spark.datasource.source",
    "lakebase_spark.datasource.reader",
    "lakebase_spark.datasource.writer",
    "lakebase_spark.datasource.streams",
]


@pytest.mark.parametrize("module", WORKER_MODULES)
def test_a_python_worker_does_not_import_the_workspace_sdk(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'databricks', 'requests', 'google'}))\n"
        # the driver side still reaches the SDK: a workspace refusal is translated by the same module
        "from lakebase_spark._api import call_api\n"
        "from databricks.sdk.errors import PermissionDenied\n"
        "def refuse(): raise PermissionDenied('no CAN USE')\n"
        "try:\n"
        "    call_api(refuse, what='mint')\n"
        "except Exception as e:\n"
        "    print(type(e).__name__)\n"
    )
    before, translated = run_python("-c", code, timeout=120).stdout.splitlines()
    assert before == "[]"
    assert translated == "PermissionDeniedError"
