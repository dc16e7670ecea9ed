package io.lakebase.spark.read;

import java.util.List;
import java.util.Map;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/** Shipped to executors: one {@link CopyPartitionReader} per task, columnar (or rows where Spark asks for them). */
final class CopyReaderFactory implements PartitionReaderFactory {

    private static final long serialVersionUID = 1L;

    private final org.apache.spark.sql.types.StructType schema;
    // A HashMap (Serializable); holds the broker secret exactly like Spark's own JDBCOptions in a JDBC task.
    private final Map<String, String> options;
    private final List<ReadOptions.Column> columns;
    private final int batchRows;

    CopyReaderFactory(org.apache.spark.sql.types.StructType schema, Map<String, String> options,
            List<ReadOptions.Column> columns, int batchRows) {
        this.schema = schema;
        this.options = options;
        this.columns = new java.util.ArrayList<>(columns);
        this.batchRows = batchRows;
    }

    @Override
    public boolean supportColumnarReads(InputPartition partition) {
        return true;
    }

    @Override
    public PartitionReader<ColumnarBatch> createColumnarReader(InputPartition partition) {
        return new CopyPartitionReader(schema, options, columns, (CopyScan.CopyPartition) partition, batchRows);
    }

    @Override
    public PartitionReader<InternalRow> createReader(InputPartition partition) {
        CopyPartitionReader batches = new CopyPartitionReader(schema, options, columns,
                (CopyScan.CopyPartition) partition, batchRows);
        return new PartitionReader<InternalRow>() {
            private java.util.Iterator<InternalRow> rows = java.util.Collections.emptyIterator();

            @Override
            public boolean next() throws java.io.IOException {
                while (!rows.hasNext()) {
                    if (!batches.next()) {
                        return false;
                    }
                    rows = batches.get().rowIterator();
                }
                return true;
            }

            @Override
            public InternalRow get() {
                return rows.next();
            }

            @Override
            public void close() {
                batches.close();
            }
        };
    }
}
