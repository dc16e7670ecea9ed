"""Exactly once when a task fails upstream of the writer (a UDF raising midway through a partition,
after some of its rows reached the writer), on ``local-cluster``: the jar-free writer in every mode and
its stream writer, and the JVM writer, on the first attempt only (Spark retries) and on every attempt
(the job fails; a rerun with the same write id, or a restart of the stream, finishes it). The same job
runs on a Connect server with no jar in ``datasource/test_remote.py``."""

from __future__ import annotations

import pyspark
import pytest

from ..upstream import check_upstream, run_upstream_job

pytestmark = [
    pytest.mark.spark,
    pytest.mark.postgres,
    pytest.mark.faults,
    pytest.mark.lane2,
    pytest.mark.skipif(int(pyspark.__version__.split(".")[0]) < 4, reason="Python data sources are Spark 4+"),
]


def test_tasks_failing_upstream_of_the_writer_lose_and_repeat_nothing(emulator, tmp_path) -> None:
    result = run_upstream_job(emulator, tmp_path, "--master", "local-cluster[2,1,1024]")
    check_upstream(result, jvm=True)
