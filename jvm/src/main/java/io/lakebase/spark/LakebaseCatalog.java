package io.lakebase.spark;

import io.lakebase.spark.catalog.LakebaseTable;
import io.lakebase.spark.catalog.Relations;
import io.lakebase.spark.connection.LakebaseOptions;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.catalyst.analysis.NoSuchFunctionException;
import org.apache.spark.sql.catalyst.analysis.NoSuchNamespaceException;
import org.apache.spark.sql.catalyst.analysis.NoSuchTableException;
import org.apache.spark.sql.catalyst.analysis.NamespaceAlreadyExistsException;
import org.apache.spark.sql.catalyst.analysis.NonEmptyNamespaceException;
import org.apache.spark.sql.catalyst.analysis.TableAlreadyExistsException;
import org.apache.spark.sql.connector.catalog.Column;
import org.apache.spark.sql.connector.catalog.FunctionCatalog;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.NamespaceChange;
import org.apache.spark.sql.connector.catalog.SupportsNamespaces;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableCatalog;
import org.apache.spark.sql.connector.catalog.TableCatalogCapability;
import org.apache.spark.sql.connector.catalog.TableChange;
import org.apache.spark.sql.connector.catalog.functions.UnboundFunction;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.execution.datasources.v2.jdbc.JDBCTableCatalog;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * A Lakebase database as a Spark SQL catalog ({@code spark.sql.catalog.<name>}, registered by
 * {@code lakebase_spark.catalog(spark, name, endpoint=...)}): namespaces are Postgres schemas, tables are its tables,
 * views, materialized views, partitioned and foreign tables.
 *
 * <p>Spark's own {@link JDBCTableCatalog} does the DDL, the type mapping and the reads (with its filter, aggregate,
 * limit, top-N and join pushdown); this class wraps it through the public catalog interfaces only, so one jar runs on
 * Spark 3.5 and 4.x. What it changes is in {@link LakebaseTable}: writes are the COPY writer, exactly once; DELETE is
 * one statement in Postgres; UPDATE and MERGE name the DataFrame call that does them.
 */
public final class LakebaseCatalog implements TableCatalog, SupportsNamespaces, FunctionCatalog {

    // Spark's JDBC catalog, held as the public interfaces it implements: no call binds to its class.
    private TableCatalog jdbc;
    private SupportsNamespaces jdbcNamespaces;
    private FunctionCatalog jdbcFunctions;
    private Map<String, String> options;
    private String name;

    @Override
    public void initialize(String name, CaseInsensitiveStringMap options) {
        this.name = name;
        this.options = LakebaseOptions.lowerCased(options.asCaseSensitiveMap());
        LakebaseOptions.parse(this.options); // bad options fail at the catalog's first use, with the fix
        JDBCTableCatalog catalog = new JDBCTableCatalog();
        catalog.initialize(name, options);
        this.jdbc = catalog;
        this.jdbcNamespaces = catalog;
        this.jdbcFunctions = catalog;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public Set<TableCatalogCapability> capabilities() {
        return jdbc.capabilities();
    }

    @Override
    public boolean useNullableQuerySchema() {
        return jdbc.useNullableQuerySchema();
    }

    /** Spark's catalog lists pgjdbc's type TABLE only; this lists every relation a SELECT can read. */
    @Override
    public Identifier[] listTables(String[] namespace) throws NoSuchNamespaceException {
        if (!jdbcNamespaces.namespaceExists(namespace)) {
            throw new NoSuchNamespaceException(namespace); // Spark's lists an absent schema as empty
        }
        return Relations.list(options, namespace);
    }

    @Override
    public Table loadTable(Identifier ident) throws NoSuchTableException {
        return new LakebaseTable(jdbc.loadTable(ident), ident, options);
    }

    @Override
    public boolean tableExists(Identifier ident) {
        return jdbc.tableExists(ident);
    }

    @Override
    public void invalidateTable(Identifier ident) {
        jdbc.invalidateTable(ident);
    }

    // Deprecated in 4.3 for createTable(Identifier, TableInfo), which 3.5 lacks; 4.3's default calls this one.
    @Override
    @SuppressWarnings("deprecation")
    public Table createTable(Identifier ident, Column[] columns, Transform[] partitions, Map<String, String> properties)
            throws TableAlreadyExistsException, NoSuchNamespaceException {
        return new LakebaseTable(jdbc.createTable(ident, columns, partitions, properties), ident, options);
    }

    // Abstract in 3.5, deprecated in 4.x (which calls the Column[] one): both lead to Spark's JDBC catalog's.
    @Override
    @Deprecated
    @SuppressWarnings("deprecation")
    public Table createTable(Identifier ident, StructType schema, Transform[] partitions,
            Map<String, String> properties)
            throws TableAlreadyExistsException, NoSuchNamespaceException {
        Column[] columns = new Column[schema.fields().length];
        for (int i = 0; i < columns.length; i++) {
            StructField f = schema.fields()[i];
            columns[i] = Column.create(f.name(), f.dataType(), f.nullable(), f.getComment().getOrElse(() -> null),
                    f.metadata().json());
        }
        return createTable(ident, columns, partitions, properties);
    }

    @Override
    public Table alterTable(Identifier ident, TableChange... changes) throws NoSuchTableException {
        return new LakebaseTable(jdbc.alterTable(ident, changes), ident, options);
    }

    @Override
    public boolean dropTable(Identifier ident) {
        return jdbc.dropTable(ident);
    }

    @Override
    public void renameTable(Identifier oldIdent, Identifier newIdent)
            throws NoSuchTableException, TableAlreadyExistsException {
        jdbc.renameTable(oldIdent, newIdent);
    }

    @Override
    public String[][] listNamespaces() throws NoSuchNamespaceException {
        return jdbcNamespaces.listNamespaces();
    }

    @Override
    public String[][] listNamespaces(String[] namespace) throws NoSuchNamespaceException {
        return jdbcNamespaces.listNamespaces(namespace);
    }

    @Override
    public boolean namespaceExists(String[] namespace) {
        return jdbcNamespaces.namespaceExists(namespace);
    }

    @Override
    public Map<String, String> loadNamespaceMetadata(String[] namespace) throws NoSuchNamespaceException {
        return jdbcNamespaces.loadNamespaceMetadata(namespace);
    }

    @Override
    public void createNamespace(String[] namespace, Map<String, String> metadata)
            throws NamespaceAlreadyExistsException {
        jdbcNamespaces.createNamespace(namespace, metadata);
    }

    @Override
    public void alterNamespace(String[] namespace, NamespaceChange... changes) throws NoSuchNamespaceException {
        jdbcNamespaces.alterNamespace(namespace, changes);
    }

    @Override
    public boolean dropNamespace(String[] namespace, boolean cascade)
            throws NoSuchNamespaceException, NonEmptyNamespaceException {
        return jdbcNamespaces.dropNamespace(namespace, cascade);
    }

    @Override
    public Identifier[] listFunctions(String[] namespace) throws NoSuchNamespaceException {
        return jdbcFunctions.listFunctions(namespace);
    }

    @Override
    public UnboundFunction loadFunction(Identifier ident) throws NoSuchFunctionException {
        return jdbcFunctions.loadFunction(ident);
    }

    @Override
    public String toString() {
        return "LakebaseCatalog(" + name + ")"; // never the options: they name the broker's secret
    }
}
