"""The README's demo command runs end to end (so the documented main job cannot rot)."""

from __future__ import annotations

import pytest

from ..jobs import run_python

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


def test_demo_reads_and_writes_through_the_provider() -> None:
    done = run_python("-m", "lakebase_spark.cli.demo", "--rows", "5000")
    out = done.stdout
    summary = dict(
        line.strip().split("  ", 1) for line in out.split("lakebase-spark demo: summary\n", 1)[1].splitlines()
    )
    summary = {k.strip(): v.strip() for k, v in summary.items()}
    assert summary["spark"].endswith("master local[2] (driver and executors in one JVM)")
    assert summary["read"] == "5,000 orders in 4 partitions"
    assert summary["wrote"].startswith("public.customer_totals: 50 customers")
    assert summary["credentials"].startswith("1 minted")
    assert summary["sql"].startswith(
        "catalog lb: CREATE TABLE lb.public.top_customers AS SELECT ... -> 10 rows"
    )
    assert summary["sharded write"] == "{'shard_apac': 1501, 'shard_eu': 999, 'shard_us': 2500}"
    assert summary["sharded read"].startswith("5,000 rows from 3 shards in 6 partitions")
    assert summary["key range"].endswith("touches only ['shard_us']")
    # Quiet: Spark's start-up lines and warnings went to its log file, not the terminal.
    for noise in ("Using Spark's default log4j profile", " WARN ", "setLogLevel", "FutureWarning"):
        assert noise not in out + done.stderr
    assert "lbtok_" not in out + done.stderr  # no database token printed anywhere
    assert "'lakebase.broker.secret': '***'" in out
