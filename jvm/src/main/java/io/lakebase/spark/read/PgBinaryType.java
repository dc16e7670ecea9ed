package io.lakebase.spark.read;

import io.lakebase.spark.core.LakebaseException;
import java.util.Locale;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.TimestampType;

/**
 * The Postgres types the COPY reader decodes from binary COPY, and the Spark types each may fill (what Spark's
 * Postgres dialect maps it to, plus the widenings a {@code customSchema} may ask for). Anything else is selected as
 * its text output when Spark reads it as a string, or read by the JDBC reader. The names are the Python planner's
 * ({@code reading/copy_columns.py}; tests/test_contract.py compares them).
 */
enum PgBinaryType {
    INT2, INT4, INT8, FLOAT4, FLOAT8, BOOL, NUMERIC, TEXT, BYTEA, DATE, TIMESTAMP, TIMESTAMPTZ;

    static PgBinaryType named(String name) {
        try {
            return valueOf(name.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new LakebaseException.Options("lakebase: the COPY reader has no decoder for Postgres type '" + name
                    + "'; read with reader=\"jdbc\"");
        }
    }

    /** The name the Python planner uses. */
    String key() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** True when a value of this type can fill a Spark column of type {@code spark} exactly as the JDBC reader would. */
    boolean fills(DataType spark) {
        switch (this) {
            case INT2:
                return spark instanceof ShortType || spark instanceof IntegerType || spark instanceof LongType;
            case INT4:
                return spark instanceof IntegerType || spark instanceof LongType;
            case INT8:
                return spark instanceof LongType;
            case FLOAT4: // not into a double: the JDBC reader parses the text "0.1", not the float 0.1f widened
                return spark instanceof FloatType;
            case FLOAT8:
                return spark instanceof DoubleType;
            case BOOL:
                return spark instanceof BooleanType;
            case NUMERIC:
                return spark instanceof DecimalType;
            case TEXT:
                return spark instanceof StringType;
            case BYTEA:
                return spark instanceof BinaryType;
            case DATE:
                return spark instanceof DateType;
            case TIMESTAMP:
            case TIMESTAMPTZ:
                return spark instanceof TimestampType;
            default:
                return false;
        }
    }
}
