package io.lakebase.spark;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.write.CopyTextEncoder;
import io.lakebase.spark.write.CopyWriteTable;
import java.util.Map;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * The COPY writer as a Spark data source ({@code df.write.format("io.lakebase.spark.CopyWriteSource")}), driven by
 * {@code lakebase_spark.write}: each partition streams its rows with one {@code COPY ... FROM STDIN} over a
 * connection from the {@code lakebase} provider and commits them together with a marker row
 * {@code (write_id, partition)} in one transaction, so a retried, speculative or re-run task that finds its marker
 * writes nothing. Write-only: the table's schema is the DataFrame's.
 */
public final class CopyWriteSource implements TableProvider {

    @Override
    public StructType inferSchema(CaseInsensitiveStringMap options) {
        throw new LakebaseException.Options("lakebase: the COPY writer only writes; read with format(\"jdbc\") and "
                + "lakebase_spark.lakebase_options(...)");
    }

    /** Writes take the DataFrame's schema as the table's. */
    @Override
    public boolean supportsExternalMetadata() {
        return true;
    }

    @Override
    public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
        CopyTextEncoder.checkSupported(schema);
        return new CopyWriteTable(schema, LakebaseOptions.lowerCased(properties));
    }

    @Override
    public String toString() {
        return "lakebase-copy";
    }
}
