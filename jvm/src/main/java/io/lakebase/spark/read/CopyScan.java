package io.lakebase.spark.read;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.connector.read.Batch;
import org.apache.spark.sql.connector.read.InputPartition;
import org.apache.spark.sql.connector.read.PartitionReaderFactory;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.sources.Filter;
import org.apache.spark.sql.types.StructType;

/** One partition per planned predicate, each one {@code COPY (SELECT ...) TO STDOUT (FORMAT binary)}. */
final class CopyScan implements Scan, Batch {

    private final StructType schema;
    private final Map<String, String> options;
    private final ReadOptions read;
    private final List<ReadOptions.Column> columns;
    private final String filters;
    private final Filter[] pushed;

    CopyScan(StructType schema, Map<String, String> options, ReadOptions read, List<ReadOptions.Column> columns,
            String filters, Filter[] pushed) {
        this.schema = schema;
        this.options = options;
        this.read = read;
        this.columns = columns;
        this.filters = filters;
        this.pushed = pushed;
    }

    @Override
    public StructType readSchema() {
        return schema;
    }

    /** In plans and the UI: the table, the columns and the pushed filters; never an option value. */
    @Override
    public String description() {
        return "lakebase COPY " + read.table + " " + schema.simpleString() + ", " + read.predicates.size()
                + " partition(s), pushed filters " + Arrays.toString(pushed);
    }

    @Override
    public Batch toBatch() {
        return this;
    }

    @Override
    public InputPartition[] planInputPartitions() {
        InputPartition[] parts = new InputPartition[read.predicates.size()];
        for (int i = 0; i < parts.length; i++) {
            parts[i] = new CopyPartition(i, copySql(read.predicates.get(i)));
        }
        return parts;
    }

    @Override
    public PartitionReaderFactory createReaderFactory() {
        return new CopyReaderFactory(schema, new HashMap<>(options), columns, read.batchRows);
    }

    private String copySql(String predicate) {
        StringBuilder select = new StringBuilder();
        for (ReadOptions.Column column : columns) {
            select.append(select.length() == 0 ? "" : ", ").append(column.sql);
        }
        StringBuilder where = new StringBuilder();
        for (String clause : new String[] {predicate, filters}) {
            if (!clause.isEmpty()) {
                where.append(where.length() == 0 ? " WHERE " : " AND ").append('(').append(clause).append(')');
            }
        }
        return "COPY (SELECT " + select + " FROM " + read.table + where + ") TO STDOUT (FORMAT binary)";
    }

    /** One partition: its COPY statement (no secret: connection options travel in the factory). */
    static final class CopyPartition implements InputPartition {
        private static final long serialVersionUID = 1L;
        final int index;
        final String sql;

        CopyPartition(int index, String sql) {
            this.index = index;
            this.sql = sql;
        }
    }
}
