package io.lakebase.spark.catalog;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.core.LakebaseException;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.analysis.IndexAlreadyExistsException;
import org.apache.spark.sql.catalyst.analysis.NoSuchIndexException;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.SupportsDeleteV2;
import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.SupportsRowLevelOperations;
import org.apache.spark.sql.connector.catalog.SupportsWrite;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.catalog.index.SupportsIndex;
import org.apache.spark.sql.connector.catalog.index.TableIndex;
import org.apache.spark.sql.connector.expressions.NamedReference;
import org.apache.spark.sql.connector.expressions.filter.Predicate;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.connector.write.LogicalWriteInfo;
import org.apache.spark.sql.connector.write.RowLevelOperation;
import org.apache.spark.sql.connector.write.RowLevelOperationBuilder;
import org.apache.spark.sql.connector.write.RowLevelOperationInfo;
import org.apache.spark.sql.connector.write.WriteBuilder;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * A table of a {@code LakebaseCatalog}: Spark's JDBC table for reads (its scan and pushdown), the COPY writer for
 * INSERT, INSERT OVERWRITE and CREATE TABLE AS SELECT ({@link CatalogWrite}), one Postgres statement for DELETE
 * ({@link PushedSql}). UPDATE and MERGE are refused at analysis, naming the DataFrame call that does them.
 */
public final class LakebaseTable
        implements SupportsRead, SupportsWrite, SupportsDeleteV2, SupportsRowLevelOperations, SupportsIndex {

    /** Spark 4's switch for pushing joins into JDBC sources (internal, off by default). */
    static final String JOIN_PUSHDOWN = "spark.sql.optimizer.datasourceV2JoinPushdown";
    static final String UPSERT = "lakebase_spark.write(df, table, mode=\"upsert\", key=...)";

    private final Table jdbc;
    private final Identifier ident;
    private final Map<String, String> options;

    public LakebaseTable(Table jdbc, Identifier ident, Map<String, String> options) {
        this.jdbc = jdbc;
        this.ident = ident;
        this.options = options;
    }

    @Override
    public String name() {
        return jdbc.name();
    }

    // Deprecated in Spark 4 for columns(), but abstract in 3.5: implemented so one jar runs on both.
    @Override
    @SuppressWarnings("deprecation")
    public StructType schema() {
        return jdbc.schema();
    }

    /** None: Spark's JDBC table lists its connection options here, and DESCRIBE EXTENDED would show them. */
    @Override
    public Map<String, String> properties() {
        return Collections.emptyMap();
    }

    @Override
    public Set<TableCapability> capabilities() {
        return Collections.unmodifiableSet(EnumSet.of(TableCapability.BATCH_READ, TableCapability.BATCH_WRITE,
                TableCapability.TRUNCATE));
    }

    /**
     * {@link CatalogScanBuilder} over Spark's JDBC scan builder. Inside a running query, the JDBC builder gets the
     * query's snapshot too, so a scan Spark reduces in Postgres (a count, a LIMIT) sees the query's moment. With
     * Spark 4's join pushdown switched on ({@value #JOIN_PUSHDOWN}), Spark's builder is returned as it is: Spark
     * pushes a join only between two of its own builders.
     */
    @Override
    public ScanBuilder newScanBuilder(CaseInsensitiveStringMap scanOptions) {
        Map<String, String> scan = LakebaseOptions.lowerCased(scanOptions.asCaseSensitiveMap());
        Map<String, String> jdbcOptions = new HashMap<>(scanOptions.asCaseSensitiveMap());
        for (String own : CatalogScanBuilder.OWN_OPTIONS) {
            jdbcOptions.keySet().removeIf(k -> k.equalsIgnoreCase(own));
        }
        QuerySnapshots.releaseOnQueryEnd(options);
        String query = QuerySnapshots.driverQuery();
        if (CatalogScanBuilder.consistent(scan) && query != null) {
            jdbcOptions.put("lakebase.snapshot", QuerySnapshots.snapshot(query, options));
        }
        ScanBuilder builder = ((SupportsRead) jdbc).newScanBuilder(new CaseInsensitiveStringMap(jdbcOptions));
        if (joinPushdown()) {
            return builder;
        }
        return new CatalogScanBuilder(ident, schema(), options, builder, scan);
    }

    private static boolean joinPushdown() {
        SparkSession session = SparkSession.active();
        return "true".equalsIgnoreCase(session.conf().get(JOIN_PUSHDOWN, "false"));
    }

    @Override
    public WriteBuilder newWriteBuilder(LogicalWriteInfo info) {
        boolean atomic = "true".equalsIgnoreCase(info.options().getOrDefault(CatalogWrite.ATOMIC, "false").trim());
        return new CatalogWrite(ident, info.schema(), options, info.queryId(), atomic);
    }

    @Override
    public boolean canDeleteWhere(Predicate[] predicates) {
        return PushedSql.condition(options, predicates) != null;
    }

    @Override
    public void deleteWhere(Predicate[] predicates) {
        PushedSql.delete(options, ident, predicates);
    }

    /**
     * Spark asks every table that supports row-level operations for one before it tries a plain DELETE; a DELETE
     * whose condition Postgres takes whole then runs as {@link #deleteWhere} (Spark's metadata-only delete), so the
     * operation returned for it is only used, and fails with why, when the condition cannot be pushed.
     */
    @Override
    public RowLevelOperationBuilder newRowLevelOperationBuilder(RowLevelOperationInfo info) {
        RowLevelOperation.Command command = info.command();
        if (command != RowLevelOperation.Command.DELETE) {
            throw new LakebaseException.Unsupported("lakebase: " + command + " on " + name() + " is not supported by "
                    + "the Lakebase catalog: Spark has no row-level " + command + " for JDBC tables. Write the new "
                    + "rows with " + UPSERT + " (INSERT ... ON CONFLICT DO UPDATE, exactly once), or run the "
                    + "statement in Postgres (lakebase_spark.connect(...))");
        }
        return () -> new UnpushedDelete(name());
    }

    // CREATE INDEX, DROP INDEX, SHOW INDEXES: Spark's JDBC table's, as without the catalog.
    @Override
    public void createIndex(String index, NamedReference[] columns,
            Map<NamedReference, Map<String, String>> columnProperties, Map<String, String> properties)
            throws IndexAlreadyExistsException {
        ((SupportsIndex) jdbc).createIndex(index, columns, columnProperties, properties);
    }

    @Override
    public void dropIndex(String index) throws NoSuchIndexException {
        ((SupportsIndex) jdbc).dropIndex(index);
    }

    @Override
    public boolean indexExists(String index) {
        return ((SupportsIndex) jdbc).indexExists(index);
    }

    @Override
    public TableIndex[] listIndexes() {
        return ((SupportsIndex) jdbc).listIndexes();
    }

    @Override
    public String toString() {
        return "LakebaseTable(" + name() + ")";
    }

    /** A DELETE whose condition has a part Postgres cannot evaluate (a subquery, a Spark-only function). */
    private static final class UnpushedDelete implements RowLevelOperation {
        private final String table;

        UnpushedDelete(String table) {
            this.table = table;
        }

        @Override
        public Command command() {
            return Command.DELETE;
        }

        @Override
        public ScanBuilder newScanBuilder(CaseInsensitiveStringMap options) {
            throw refused();
        }

        @Override
        public WriteBuilder newWriteBuilder(LogicalWriteInfo info) {
            throw refused();
        }

        private RuntimeException refused() {
            return new LakebaseException.Unsupported("lakebase: this DELETE on " + table + " has a condition Postgres "
                    + "cannot evaluate (a subquery or a function Spark cannot translate), and the catalog only "
                    + "deletes in one Postgres statement; use plain comparisons of columns and literals, or run the "
                    + "DELETE in Postgres (lakebase_spark.connect(...))");
        }
    }
}
