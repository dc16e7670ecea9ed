package io.lakebase.spark.write;

import io.lakebase.spark.connection.LakebaseOptions;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.connector.catalog.SupportsWrite;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.write.BatchWrite;
import org.apache.spark.sql.connector.write.DataWriterFactory;
import org.apache.spark.sql.connector.write.LogicalWriteInfo;
import org.apache.spark.sql.connector.write.PhysicalWriteInfo;
import org.apache.spark.sql.connector.write.Write;
import org.apache.spark.sql.connector.write.WriteBuilder;
import org.apache.spark.sql.connector.write.WriterCommitMessage;
import org.apache.spark.sql.types.StructType;

/** A Postgres table as a write-only Spark table; its one write is {@link CopyWriteTable.CopyWrite}. */
public final class CopyWriteTable implements SupportsWrite {

    private final StructType schema;
    private final Map<String, String> options;
    private final WriteOptions write;

    public CopyWriteTable(StructType schema, Map<String, String> options) {
        this.schema = schema;
        this.options = options;
        this.write = WriteOptions.parse(options);
        LakebaseOptions.parse(options); // fail on the driver, before any task starts, on bad connection options
    }

    /**
     * The executors' side of a COPY write planned elsewhere (the catalog's INSERT: the driver's Python planned it
     * and named the {@code lakebase.write.*} options); checks the options and the schema on the driver first.
     */
    public static DataWriterFactory writerFactory(StructType schema, Map<String, String> options, int numPartitions) {
        CopyTextEncoder.checkSupported(schema);
        WriteOptions.parse(options);
        LakebaseOptions.parse(options);
        return new CopyWriterFactory(schema, new HashMap<>(options), numPartitions);
    }

    @Override
    public String name() {
        return "lakebase " + write.table; // shown in plans and the UI: the table, never an option value
    }

    // Deprecated in Spark 4 for columns(), but abstract in 3.5: implemented so one jar runs on both.
    @Override
    @SuppressWarnings("deprecation")
    public StructType schema() {
        return schema;
    }

    @Override
    public Set<TableCapability> capabilities() {
        return Collections.unmodifiableSet(EnumSet.of(TableCapability.BATCH_WRITE));
    }

    @Override
    public WriteBuilder newWriteBuilder(LogicalWriteInfo info) {
        return new CopyWrite(schema, options);
    }

    @Override
    public String toString() {
        return name();
    }

    /** Builder, write and batch write in one: the writer has nothing to configure per write. */
    static final class CopyWrite implements WriteBuilder, Write, BatchWrite {
        private final StructType schema;
        private final Map<String, String> options;

        CopyWrite(StructType schema, Map<String, String> options) {
            this.schema = schema;
            this.options = options;
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
            return "lakebase COPY";
        }

        @Override
        public DataWriterFactory createBatchWriterFactory(PhysicalWriteInfo info) {
            return new CopyWriterFactory(schema, new HashMap<>(options), info.numPartitions());
        }

        /** Exactly once comes from the marker rows (a second commit of a partition finds its marker), not Spark. */
        @Override
        public boolean useCommitCoordinator() {
            return false;
        }

        @Override
        public void commit(WriterCommitMessage[] messages) {
            // Every partition committed its rows and marker itself; lakebase_spark.write records the whole write.
        }

        @Override
        public void abort(WriterCommitMessage[] messages) {
            // Committed partitions keep their markers, so a rerun with the same write id skips them.
        }
    }
}
