package io.lakebase.spark;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.read.CopyReadTable;
import java.util.Map;
import org.apache.spark.sql.connector.catalog.Table;
import org.apache.spark.sql.connector.catalog.TableProvider;
import org.apache.spark.sql.connector.expressions.Transform;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * The binary-COPY reader as a Spark data source ({@code spark.read.format("io.lakebase.spark.CopyReadSource")}),
 * driven by {@code lakebase_spark.read}: it plans the partitions (exact predicates), the snapshot and the columns,
 * and gives the schema Spark's JDBC reader infers; each partition runs one
 * {@code COPY (SELECT ...) TO STDOUT (FORMAT binary)} over a connection from the {@code lakebase} provider and
 * decodes it into column vectors. Read-only. No short name: Spark 4's {@code spark.dataSource.register("lakebase")}
 * would then clash with it.
 */
public final class CopyReadSource implements TableProvider {

    @Override
    public StructType inferSchema(CaseInsensitiveStringMap options) {
        throw new LakebaseException.Options("lakebase: the COPY reader takes its schema from lakebase_spark.read(...), "
                + "which plans the read; call that instead of format(\"" + CopyReadSource.class.getName() + "\")");
    }

    @Override
    public boolean supportsExternalMetadata() {
        return true;
    }

    @Override
    public Table getTable(StructType schema, Transform[] partitioning, Map<String, String> properties) {
        return new CopyReadTable(schema, LakebaseOptions.lowerCased(properties));
    }

    @Override
    public String toString() {
        return "lakebase-copy-read";
    }
}
