package io.lakebase.spark.catalog;

import io.lakebase.spark.read.CopyReadTable;
import java.util.Map;
import java.util.UUID;
import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * A catalog read by the binary-COPY reader: one COPY statement per balanced partition; each task imports its query's
 * snapshot ({@link CatalogReaderFactory}), taken when the query runs, not when it is planned or explained.
 */
final class CatalogCopyScan implements Scan, Batch {

    private final StructType schema;
    private final Map<String, String> options;
    private final boolean consistent;
    private final String where;

    CatalogCopyScan(StructType schema, Map<String, String> options, boolean consistent, String where) {
        this.schema = schema;
        this.options = options;
        this.consistent = consistent;
        this.where = where;
    }

    @Override
    public StructType readSchema() {
        return schema;
    }

    /** In plans and the UI: the table, columns and pushed WHERE (no option values). */
    @Override
    public String description() {
        return "lakebase COPY " + options.get("lakebase.read.table") + " " + schema.simpleString()
                + (where == null ? "" : ", pushed WHERE " + where) + (consistent ? ", one snapshot per query" : "");
    }

    @Override
    public Batch toBatch() {
        return this;
    }

    @Override
    public InputPartition[] planInputPartitions() {
        return batch(options).planInputPartitions();
    }

    @Override
    public PartitionReaderFactory createReaderFactory() {
        return new CatalogReaderFactory(schema, options, consistent, QuerySnapshots.JVM + ":scan:" + UUID.randomUUID());
    }

    private Batch batch(Map<String, String> read) {
        return new CopyReadTable(schema, read).newScanBuilder(CaseInsensitiveStringMap.empty()).build().toBatch();
    }
}
