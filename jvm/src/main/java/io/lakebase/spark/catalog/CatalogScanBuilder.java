package io.lakebase.spark.catalog;

import io.lakebase.spark.core.LakebaseException;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import org.apache.spark.SparkContext;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.expressions.SortOrder;
import org.apache.spark.sql.connector.expressions.aggregate.Aggregation;
import org.apache.spark.sql.connector.expressions.filter.Predicate;
import org.apache.spark.sql.connector.read.Scan;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.read.SupportsPushDownAggregates;
import org.apache.spark.sql.connector.read.SupportsPushDownLimit;
import org.apache.spark.sql.connector.read.SupportsPushDownOffset;
import org.apache.spark.sql.connector.read.SupportsPushDownRequiredColumns;
import org.apache.spark.sql.connector.read.SupportsPushDownTopN;
import org.apache.spark.sql.connector.read.SupportsPushDownV2Filters;
import org.apache.spark.sql.types.StructType;

/**
 * A catalog table's scan: every pushdown goes to Spark's JDBC scan builder first, so Spark pushes exactly what it
 * pushes today (filters, aggregates, LIMIT, OFFSET, top-N). A scan that ends up pushing more than filters
 * and columns (a count, a LIMIT: Postgres returns few rows) is the JDBC one; a scan of rows is the binary-COPY reader
 * in balanced partitions, its WHERE the pushed filters as Spark's Postgres dialect compiles them. Both import the
 * query's snapshot ({@link QuerySnapshots}) unless {@code consistent} is false. TABLESAMPLE is not pushed (Spark
 * samples the rows): Spark 4.3 moved its pushdown to a method 3.5 does not have, and one jar serves both.
 *
 * <p>Read options ({@code spark.read.options(...).table(...)}, SQL {@code WITH (...)}): {@code key} (column(s) to
 * partition by; default page ranges), {@code partitions} (default: the default parallelism), {@code reader}
 * ({@code copy} or {@code jdbc}), {@code consistent} ({@code true}).
 */
final class CatalogScanBuilder implements SupportsPushDownV2Filters, SupportsPushDownRequiredColumns,
        SupportsPushDownAggregates, SupportsPushDownLimit, SupportsPushDownOffset, SupportsPushDownTopN {

    static final String KEY = "key";
    static final String PARTITIONS = "partitions";
    static final String READER = "reader";
    static final String CONSISTENT = "consistent";
    /** The options above: the catalog's own, not passed to Spark's JDBC reader (pgjdbc would get them). */
    static final String[] OWN_OPTIONS = {KEY, PARTITIONS, READER, CONSISTENT};
    /** Spark's own partitioning options: a user who sets them asked for Spark's JDBC reader. */
    private static final String[] JDBC_PARTITIONING = {"partitioncolumn", "numpartitions", "lowerbound",
        "upperbound", "query", "customschema"};

    private final Identifier table;
    private final Map<String, String> options;
    private final ScanBuilder jdbc;
    private final String key;
    private final Integer partitions;
    private final boolean copy;
    private final boolean consistent;
    private StructType required;
    /** Whether Spark pushed more than filters and columns: then the JDBC scan returns the (few) rows. */
    private boolean reduced;

    CatalogScanBuilder(Identifier table, StructType schema, Map<String, String> options, ScanBuilder jdbc,
            Map<String, String> scanOptions) {
        this.table = table;
        this.options = options;
        this.jdbc = jdbc;
        this.required = schema;
        this.key = scanOptions.get(KEY);
        this.partitions = parsePartitions(scanOptions.get(PARTITIONS));
        String reader = scanOptions.getOrDefault(READER, "copy").trim().toLowerCase(Locale.ROOT);
        if (!reader.equals("copy") && !reader.equals("jdbc")) {
            throw new LakebaseException.Options("lakebase: read option reader must be copy or jdbc, got '" + reader
                    + "'");
        }
        boolean jdbcPartitioning = false;
        for (String k : JDBC_PARTITIONING) {
            jdbcPartitioning |= scanOptions.containsKey(k);
        }
        this.copy = reader.equals("copy") && !jdbcPartitioning;
        this.consistent = consistent(scanOptions);
    }

    /** Read option {@code consistent} of lower-cased scan options: true unless "false". */
    static boolean consistent(Map<String, String> scanOptions) {
        return !"false".equalsIgnoreCase(scanOptions.getOrDefault(CONSISTENT, "true").trim());
    }

    @Override
    public Predicate[] pushPredicates(Predicate[] predicates) {
        return ((SupportsPushDownV2Filters) jdbc).pushPredicates(predicates);
    }

    @Override
    public Predicate[] pushedPredicates() {
        return ((SupportsPushDownV2Filters) jdbc).pushedPredicates();
    }

    @Override
    public void pruneColumns(StructType requiredSchema) {
        ((SupportsPushDownRequiredColumns) jdbc).pruneColumns(requiredSchema);
        this.required = requiredSchema;
    }

    @Override
    public boolean supportCompletePushDown(Aggregation aggregation) {
        return ((SupportsPushDownAggregates) jdbc).supportCompletePushDown(aggregation);
    }

    @Override
    public boolean pushAggregation(Aggregation aggregation) {
        return reduced(((SupportsPushDownAggregates) jdbc).pushAggregation(aggregation));
    }

    @Override
    public boolean pushLimit(int limit) {
        return reduced(((SupportsPushDownLimit) jdbc).pushLimit(limit));
    }

    @Override
    public boolean pushOffset(int offset) {
        return reduced(((SupportsPushDownOffset) jdbc).pushOffset(offset));
    }

    @Override
    public boolean pushTopN(SortOrder[] orders, int limit) {
        return reduced(((SupportsPushDownTopN) jdbc).pushTopN(orders, limit));
    }

    @Override
    public boolean isPartiallyPushed() {
        return ((SupportsPushDownTopN) jdbc).isPartiallyPushed();
    }

    private boolean reduced(boolean pushed) {
        reduced |= pushed;
        return pushed;
    }

    @Override
    public Scan build() {
        if (!copy || reduced || required.fields().length == 0) {
            return jdbc.build();
        }
        String where = PushedSql.condition(options, pushedPredicates());
        if (where == null) {
            return jdbc.build(); // a pushed filter our compile cannot reproduce: let Spark's scan apply it
        }
        where = where.isEmpty() ? null : where;
        int count = partitions != null ? partitions : SparkContext.getOrCreate().defaultParallelism();
        Map<String, String> planned = new ReadCoordinator(options).plan(table, required, where, key, count);
        if (planned == null) {
            return jdbc.build();
        }
        Map<String, String> copyOptions = new HashMap<>(options);
        copyOptions.putAll(planned);
        return new CatalogCopyScan(required, copyOptions, consistent, where);
    }

    private static Integer parsePartitions(String raw) {
        if (raw == null) {
            return null;
        }
        try {
            int n = Integer.parseInt(raw.trim());
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException e) {
            // fall through to the error
        }
        throw new LakebaseException.Options("lakebase: read option partitions must be a whole number of at least 1, "
                + "got '" + raw + "'");
    }
}
