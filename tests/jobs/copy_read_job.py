"""The COPY reader in a Spark of its own, run by reading/test_copy_jobs.py. Usage::

    copy_read_job.py zone HOST ENDPOINT DATABASE TABLE ZONE
    copy_read_job.py kill HOST ENDPOINT DATABASE TABLE

``zone``: the JVM in time zone ZONE (local[2]); TABLE read by the COPY reader and the JDBC reader,
compared value for value (tests.copy_reads). ``kill``: ``local-cluster[2,1,1024]``; TABLE read by the
COPY reader in 4 partitions after writing the file ``LAKEBASE_TEST_SIGNAL`` names (the test kills an
executor then); reports how many ids came back, how many distinct, and their sum. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from databricks.sdk import WorkspaceClient

import lakebase_spark
from lakebase_spark.testing.pytest_plugin import local_spark_builder

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.copy_reads
from tests.copy_reads import differences, read_both, uses_copy


def main() -> None:
    mode, host, endpoint, database, table, *rest = sys.argv[1:]
    workspace = WorkspaceClient(host=host, token=os.environ["LAKEBASE_TEST_PAT"])
    if mode == "zone":
        conf = {"spark.driver.extraJavaOptions": f"-Duser.timezone={rest[0]}"}
        spark = local_spark_builder("lakebase-spark copy zone", conf).getOrCreate()
    else:
        conf = {"spark.executor.memory": "768m", "spark.task.maxFailures": "4"}
        master = "local-cluster[2,1,1024]"
        spark = local_spark_builder("lakebase-spark copy kill", conf, master=master).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    kwargs = {"endpoint": endpoint, "database": database, "workspace_client": workspace}
    try:
        if mode == "zone":
            copy, jdbc = read_both(spark, table, key="id", **kwargs)
            zone = spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID()
            print(json.dumps({"zone": zone, "copy": uses_copy(copy), "differences": differences(copy, jdbc)}))
            return
        df = lakebase_spark.read(spark, table, partitions=4, **kwargs)  # page ranges
        Path(os.environ["LAKEBASE_TEST_SIGNAL"]).write_text("reading")
        ids = [r["id"] for r in df.select("id").collect()]
        print(
            json.dumps({"copy": uses_copy(df), "rows": len(ids), "distinct": len(set(ids)), "sum": sum(ids)})
        )
    finally:
        spark.stop()


if __name__ == "__main__":
    main()
