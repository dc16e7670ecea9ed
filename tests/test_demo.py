"""The README's demo command runs end to end (so the documented main job cannot rot)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


def test_demo_reads_and_writes_through_the_provider() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lakebase_spark.demo", "--rows", "5000"],
        env=dict(os.environ, PYSPARK_PYTHON=sys.executable),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "read 5,000 orders in 4 partitions" in out
    assert "wrote public.customer_totals: 50 customers" in out
    assert "credentials: 1 minted" in out
    assert "sharded write: {'shard_apac': 1501, 'shard_eu': 999, 'shard_us': 2500}" in out
    assert "sharded read: 5,000 rows from 3 shards in 6 partitions" in out
    assert "touches only ['shard_us']" in out
    assert "lbtok_" not in out + done.stderr  # no database token printed anywhere
    assert "'lakebase.broker.secret': '***'" in out
