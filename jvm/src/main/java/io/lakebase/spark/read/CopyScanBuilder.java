package io.lakebase.spark.read;

import io.lakebase.spark.connection.LakebaseOptions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.read.SupportsPushDownFilters;
import org.apache.spark.sql.connector.read.SupportsPushDownRequiredColumns;
import org.apache.spark.sql.jdbc.JdbcDialects;
import org.apache.spark.sql.sources.Filter;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;

/** Takes Spark's column pruning and filters (see {@link FilterSql}), then builds the {@link CopyScan}. */
final class CopyScanBuilder implements ScanBuilder, SupportsPushDownRequiredColumns, SupportsPushDownFilters {

    private final Map<String, String> options;
    private final ReadOptions read;
    private final Map<String, ReadOptions.Column> byName = new LinkedHashMap<>();
    private StructType schema;
    private Filter[] pushed = new Filter[0];
    private final List<String> where = new ArrayList<>();

    CopyScanBuilder(StructType schema, Map<String, String> options, ReadOptions read) {
        this.schema = schema;
        this.options = options;
        this.read = read;
        for (ReadOptions.Column column : read.columns) {
            byName.put(column.name, column);
        }
    }

    @Override
    public void pruneColumns(StructType required) {
        List<StructField> kept = new ArrayList<>();
        for (StructField field : schema.fields()) {
            if (required.getFieldIndex(field.name()).isDefined()) {
                kept.add(field);
            }
        }
        schema = new StructType(kept.toArray(new StructField[0]));
    }

    /** Compiles what it can; returns every filter, so Spark checks each row again whatever Postgres did. */
    @Override
    public Filter[] pushFilters(Filter[] filters) {
        FilterSql sql = new FilterSql(byName, JdbcDialects.get(LakebaseOptions.parse(options).url));
        List<Filter> done = new ArrayList<>();
        for (Filter filter : filters) {
            String clause = sql.compile(filter);
            if (clause != null) {
                where.add(clause);
                done.add(filter);
            }
        }
        pushed = done.toArray(new Filter[0]);
        return filters;
    }

    @Override
    public Filter[] pushedFilters() {
        return pushed;
    }

    @Override
    public Scan build() {
        List<ReadOptions.Column> columns = new ArrayList<>();
        for (StructField field : schema.fields()) {
            columns.add(byName.get(field.name()));
        }
        return new CopyScan(schema, options, read, columns, String.join(" AND ", where), pushed);
    }
}
