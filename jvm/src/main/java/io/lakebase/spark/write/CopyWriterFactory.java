package io.lakebase.spark.write;

import io.lakebase.spark.connection.LakebaseOptions;
import java.time.ZoneId;
import java.util.Map;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.types.StructType;

/** Shipped to executors: opens one {@link CopyDataWriter} per task attempt. */
final class CopyWriterFactory implements DataWriterFactory {

    private static final long serialVersionUID = 1L;

    private final StructType schema;
    // A HashMap (Serializable); holds the broker secret exactly like Spark's own JDBCOptions in a JDBC task.
    private final Map<String, String> options;
    private final int numPartitions;

    CopyWriterFactory(StructType schema, Map<String, String> options, int numPartitions) {
        this.schema = schema;
        this.options = options;
        this.numPartitions = numPartitions;
    }

    @Override
    public DataWriter<InternalRow> createWriter(int partitionId, long taskId) {
        TaskContext task = TaskContext.get();
        int attempt = task == null ? 0 : task.attemptNumber() + task.stageAttemptNumber();
        WriteOptions write = WriteOptions.parse(options);
        return new CopyDataWriter(LakebaseOptions.parse(options), write,
                new CopyTextEncoder(schema, write.columnTypes, ZoneId.systemDefault()), partitionId, numPartitions,
                attempt);
    }
}
