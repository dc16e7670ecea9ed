"""The README's sharding example runs as written (against the emulator), so the docs cannot rot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lakebase_spark

from .conftest import ENDPOINT

pytestmark = [pytest.mark.spark, pytest.mark.postgres]

README = Path(__file__).parent.parent / "README.md"


def example(marker: str) -> str:
    text = README.read_text()
    found = re.search(rf"<!-- {marker}: .*? -->\n```python\n(.*?)```", text, re.S)
    assert found, f"README has no {marker} block"
    return found.group(1)


def test_sharding_example(spark, emulator, monkeypatch) -> None:
    for name in ("shard_eu", "shard_us", "shard_apac"):
        emulator.create_database(name)
    # The example relies on the default WorkspaceClient(): configure it the way users do, by environment.
    monkeypatch.setenv("DATABRICKS_HOST", emulator.host)
    monkeypatch.setenv("DATABRICKS_TOKEN", emulator.pat)
    monkeypatch.setattr(lakebase_spark.service, "_default_workspace", None)
    scope = {"spark": spark, "ENDPOINT": ENDPOINT}
    try:
        exec(compile(example("sharding-example"), "README.md", "exec"), scope)
    finally:
        lakebase_spark.stop_shared_broker_services()
    assert scope["everything"].count() == 7_999
    shards = {r.shard: r["count"] for r in scope["everything"].groupBy("shard").count().collect()}
    assert shards == {"shard_eu": 999, "shard_us": 4_000, "shard_apac": 3_000}
    assert sorted(r.id for r in scope["some"].collect()) == list(range(1_500, 2_500))
    assert scope["owner"] == "shard_us"
