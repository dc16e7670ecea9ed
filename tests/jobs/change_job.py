"""A change stream in a Spark of its own, run by changes/test_change_jobs.py (``local-cluster``: the driver
is killed at chosen points, Postgres crashes, an executor is lost during the snapshot) and on a Connect
server with no jar. The sink logs every batch's rows into ``<table>_log`` exactly once per batch id
(a jar-free write whose write id is the batch's), so what the stream delivered, and how often, can be
read back afterwards.

Usage: ``change_job.py (--master MASTER | --remote sc://...) HOST ENDPOINT DATABASE WORKDIR TABLE SLOT
ACTION`` where ACTION is ``run:N`` (stop after N batches), ``kill-before:N`` / ``kill-after:N`` (the
driver process dies when batch N reaches the sink, before or after the sink logged it), or ``drain``
(Trigger.AvailableNow). Prints one JSON line (killed runs print nothing).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from databricks.sdk import WorkspaceClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType

from lakebase_spark.datasource import register, source_options
from lakebase_spark.serving.service import BrokerService
from lakebase_spark.tokens.broker import TokenBroker


def pause(value):  # type: ignore[no-untyped-def]  # hints would make it a pandas UDF
    """A Python UDF that pauses a second every 5,000 ids (a snapshot task of 10,000 rows: 2 s)."""
    if value % 5000 == 1:
        time.sleep(1)
    return value


def main() -> None:
    how, where, host, endpoint, database, workdir, table, slot, action = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    if how == "--remote":
        spark = SparkSession.builder.remote(where).appName("lakebase-spark change job").getOrCreate()
    else:
        from lakebase_spark.testing.pytest_plugin import local_spark_builder

        conf = {"spark.task.maxFailures": "4", "spark.executor.memory": "768m"}
        spark = local_spark_builder("lakebase-spark change job", conf, master=where).getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
    register(spark)
    service = BrokerService(TokenBroker(workspace))
    opts = dict(source_options(endpoint, database=database, broker=service))
    kind, _, number = action.partition(":")
    target = int(number) if number else None
    signal_file = Path(workdir) / "streaming"

    def sink(batch, batch_id):  # type: ignore[no-untyped-def]
        if kind == "kill-before" and batch_id == target:
            os.kill(os.getpid(), signal.SIGKILL)  # offsets written, nothing of the batch logged
        rows = batch.withColumn("_seq", F.monotonically_increasing_id()).withColumn("_batch", F.lit(batch_id))
        if kind == "slow-run" and batch_id == 0:
            rows = rows.withColumn("id", F.udf(pause, IntegerType())("id"))
        writer = rows.write.format("lakebase").options(**opts).option("dbtable", f"{table}_log")
        writer.option("writeId", f"{slot}/{batch_id}").mode("append").save()
        if kind == "kill-after" and batch_id == target:
            os.kill(os.getpid(), signal.SIGKILL)  # logged, but Spark has not recorded the batch done

    stream = (
        spark.readStream.format("lakebase").options(**opts).option("dbtable", table)
        .option("slotName", slot).option("numPartitions", "6").load()
    )  # fmt: skip
    writer = stream.writeStream.foreachBatch(sink).option("checkpointLocation", f"{workdir}/checkpoint")
    if kind == "drain":
        query = writer.trigger(availableNow=True).start()
        signal_file.write_text("drain")
        query.awaitTermination(600)
    else:
        query = writer.trigger(processingTime="500 milliseconds").start()
        signal_file.write_text("streaming")
        deadline = time.monotonic() + 300
        while query.isActive and time.monotonic() < deadline:
            done = [p.get("batchId", -1) for p in query.recentProgress]
            if kind in ("run", "slow-run") and target is not None and done and max(done) >= target:
                break
            time.sleep(0.2)
        query.stop()
    error = query.exception()
    print(json.dumps({"error": None if error is None else str(error)[:3000]}))
    spark.stop()
    service.stop()


if __name__ == "__main__":
    main()
