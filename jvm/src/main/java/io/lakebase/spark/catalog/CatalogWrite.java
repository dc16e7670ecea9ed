package io.lakebase.spark.catalog;

import io.lakebase.spark.core.Log;
import io.lakebase.spark.write.CopyWriteTable;
import java.util.HashMap;
import java.util.Map;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.write.BatchWrite;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.PhysicalWriteInfo;
import org.apache.spark.sql.connector.write.SupportsTruncate;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriteBuilder;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.types.StructType;

/**
 * One catalog write (INSERT INTO, INSERT OVERWRITE, CREATE TABLE AS SELECT, {@code df.writeTo}): planned and finished
 * by the driver's Python ({@link WriteCoordinator}) as {@code lakebase_spark.write} plans its own, the rows moved by
 * the COPY writer. The query's id is the write id: a task retried after its commit, a speculative copy or a rerun
 * stage finds its partition's marker and writes nothing twice. INSERT OVERWRITE is {@code mode="overwrite"}: staged,
 * then applied in one transaction, so readers see the old rows or the new ones. An INSERT INTO goes straight into the
 * table (a failed statement leaves the partitions it committed, as Spark's JDBC writer does) unless the write option
 * {@value #ATOMIC} is true: then it is staged too, all rows or none.
 */
final class CatalogWrite implements WriteBuilder, SupportsTruncate, Write, BatchWrite {

    /** The write option that stages an INSERT INTO, so a failed statement leaves the table as it was. */
    static final String ATOMIC = "atomic";

    private final Identifier table;
    private final StructType schema;
    private final Map<String, String> options;
    private final String writeId;
    private final boolean atomic;
    private final WriteCoordinator coordinator;
    private String mode = "append";

    CatalogWrite(Identifier table, StructType schema, Map<String, String> options, String queryId, boolean atomic) {
        this.table = table;
        this.schema = schema;
        this.options = options;
        this.writeId = "spark-query-" + queryId;
        this.atomic = atomic;
        this.coordinator = new WriteCoordinator(options);
    }

    @Override
    public WriteBuilder truncate() {
        mode = "overwrite";
        return this;
    }

    @Override
    public Write build() {
        return this;
    }

    @Override
    public BatchWrite toBatch() {
        return this;
    }

    @Override
    public String description() {
        return "lakebase COPY " + mode + (atomic && mode.equals("append") ? " (atomic)" : "");
    }

    @Override
    public DataWriterFactory createBatchWriterFactory(PhysicalWriteInfo info) {
        Map<String, String> planned = new HashMap<>(options);
        planned.putAll(coordinator.begin(table, schema, mode, atomic, writeId));
        return CopyWriteTable.writerFactory(schema, planned, info.numPartitions());
    }

    /** Exactly once comes from the marker rows (a second commit of a partition finds its marker), not Spark. */
    @Override
    public boolean useCommitCoordinator() {
        return false;
    }

    @Override
    public void commit(WriterCommitMessage[] messages) {
        coordinator.commit(writeId);
    }

    @Override
    public void abort(WriterCommitMessage[] messages) {
        try {
            coordinator.abort(writeId, "the Spark job failed");
        } catch (RuntimeException e) {
            // The job's own failure is what Spark reports; the stage (if any) is dropped by the next prune.
            Log.warning("lakebase: could not tell the driver that write %s into %s failed: %s", writeId, table,
                    e.getMessage());
        }
    }
}
