package io.lakebase.spark.read;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.core.LakebaseException;
import java.util.Collections;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import org.apache.spark.sql.connector.catalog.SupportsRead;
import org.apache.spark.sql.connector.catalog.TableCapability;
import org.apache.spark.sql.connector.read.ScanBuilder;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/** A Postgres table (or view) as a read-only Spark table; its scan is {@link CopyScanBuilder}'s. */
public final class CopyReadTable implements SupportsRead {

    private final StructType schema;
    private final Map<String, String> options;
    private final ReadOptions read;

    public CopyReadTable(StructType schema, Map<String, String> options) {
        this.schema = schema;
        this.options = options;
        this.read = ReadOptions.parse(options);
        LakebaseOptions.parse(options); // fail on the driver, before any task starts, on bad connection options
        for (org.apache.spark.sql.types.StructField field : schema.fields()) {
            ReadOptions.Column column = read.column(field.name());
            if (column == null) {
                throw new LakebaseException.Options("lakebase: column " + field.name() + " of the schema is not in "
                        + ReadOptions.COLUMNS + "; read with lakebase_spark.read(...), which sets both");
            }
            if (!column.type.fills(field.dataType())) {
                throw new LakebaseException.Options("lakebase: the COPY reader cannot read Postgres "
                        + column.type.key() + " into Spark " + field.dataType().simpleString() + " (column "
                        + field.name() + "); read with reader=\"jdbc\"");
            }
        }
    }

    @Override
    public String name() {
        return "lakebase " + read.table; // shown in plans and the UI: the table, never an option value
    }

    // Deprecated in Spark 4 for columns(), but abstract in 3.5: implemented so one jar runs on both.
    @Override
    @SuppressWarnings("deprecation")
    public StructType schema() {
        return schema;
    }

    @Override
    public Set<TableCapability> capabilities() {
        return Collections.unmodifiableSet(EnumSet.of(TableCapability.BATCH_READ));
    }

    @Override
    public ScanBuilder newScanBuilder(CaseInsensitiveStringMap ignored) {
        return new CopyScanBuilder(schema, options, read);
    }

    @Override
    public String toString() {
        return name();
    }
}
