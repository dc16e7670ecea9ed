package io.lakebase.spark.catalog;

import io.lakebase.spark.read.CopyReadTable;
import java.util.HashMap;
import java.util.Map;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * Shipped to executors: the COPY reader's factory for a catalog read, which first finds the snapshot of the task's
 * query ({@link QuerySnapshots}): Spark makes reader factories while it plans, so the snapshot cannot be chosen then.
 */
final class CatalogReaderFactory implements PartitionReaderFactory {

    private static final long serialVersionUID = 1L;

    private final StructType schema;
    // A HashMap (Serializable); holds the broker secret exactly like Spark's own JDBCOptions in a JDBC task.
    private final HashMap<String, String> options;
    private final boolean consistent;
    private final String driverJvm;
    private final String untracked;

    CatalogReaderFactory(StructType schema, Map<String, String> options, boolean consistent, String untracked) {
        this.schema = schema;
        this.options = new HashMap<>(options);
        this.consistent = consistent;
        this.driverJvm = QuerySnapshots.JVM;
        this.untracked = untracked;
    }

    @Override
    public boolean supportColumnarReads(InputPartition partition) {
        return true;
    }

    @Override
    public PartitionReader<ColumnarBatch> createColumnarReader(InputPartition partition) {
        return reader().createColumnarReader(partition);
    }

    @Override
    public PartitionReader<InternalRow> createReader(InputPartition partition) {
        return reader().createReader(partition);
    }

    private PartitionReaderFactory reader() {
        Map<String, String> read = new HashMap<>(options);
        if (consistent) {
            read.put("lakebase.snapshot", QuerySnapshots.snapshot(QuerySnapshots.taskQuery(driverJvm, untracked),
                    options));
        }
        return new CopyReadTable(schema, read).newScanBuilder(CaseInsensitiveStringMap.empty()).build().toBatch()
                .createReaderFactory();
    }
}
