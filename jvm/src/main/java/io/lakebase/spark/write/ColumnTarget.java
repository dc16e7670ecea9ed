package io.lakebase.spark.write;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.lakebase.spark.core.LakebaseException;
import java.io.IOException;
import java.io.Serializable;
import java.util.Locale;

/**
 * What the COPY encoder knows of one target column: its (element) type name, type category, whether it is an array
 * and the array's element delimiter. Sent by {@code lakebase_spark.write} as JSON (Python's
 * {@code tables.column_types_option}; the field names are checked against it by tests/test_contract.py).
 *
 * <p>The encoder writes what Spark's JDBC writer would make Postgres store: a Spark value whose type differs from the
 * column's is converted the way Postgres converts Spark's parameter (e.g. a decimal into an integer column is rounded
 * half away from zero, a double into a numeric column keeps 15 significant digits, a boolean into text is "true").
 */
final class ColumnTarget implements Serializable {

    private static final long serialVersionUID = 1L;

    // The JSON fields (tables.py: TYPE, CATEGORY, ARRAY, DELIMITER).
    static final String TYPE = "type";
    static final String CATEGORY = "category";
    static final String ARRAY = "array";
    static final String DELIMITER = "delimiter";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** pg_type.typname of the column (of the element, for arrays; of the base type, for domains). */
    final String type;
    /** pg_type.typcategory: N numeric, S string, B boolean, D date/time, U user-defined... */
    final char category;
    final boolean array;
    final char delimiter;

    ColumnTarget(String type, char category, boolean array, char delimiter) {
        this.type = type.toLowerCase(Locale.ROOT);
        this.category = category;
        this.array = array;
        this.delimiter = delimiter;
    }

    /** The element of an array column. */
    ColumnTarget element() {
        return new ColumnTarget(type, category, false, delimiter);
    }

    boolean isText() {
        return category == 'S';
    }

    boolean is(String... names) {
        for (String name : names) {
            if (type.equals(name)) {
                return true;
            }
        }
        return false;
    }

    boolean isInteger() {
        return is("int2", "int4", "int8");
    }

    /** regclass, regtype, regproc...: OID aliases, which read a number only as an unsigned one. */
    boolean isOidAlias() {
        return type.startsWith("reg") && category == 'N';
    }

    /** Parses the option: a JSON array with one object per written column, in the DataFrame's order. */
    static ColumnTarget[] parseAll(String json, String option) {
        try {
            JsonNode root = JSON.readTree(json);
            if (root == null || !root.isArray()) {
                throw new IOException("not a JSON array");
            }
            ColumnTarget[] out = new ColumnTarget[root.size()];
            for (int i = 0; i < out.length; i++) {
                JsonNode c = root.get(i);
                String category = text(c, CATEGORY);
                String delimiter = text(c, DELIMITER);
                if (category.length() != 1 || delimiter.length() != 1 || !c.path(ARRAY).isBoolean()) {
                    throw new IOException("column " + i + " is malformed");
                }
                out[i] = new ColumnTarget(text(c, TYPE), category.charAt(0), c.get(ARRAY).asBoolean(),
                        delimiter.charAt(0));
            }
            return out;
        } catch (IOException | RuntimeException e) {
            throw new LakebaseException.Options("lakebase: option " + option + " must be the column types "
                    + "lakebase_spark.write(...) sets (" + e.getMessage() + "); write with that function");
        }
    }

    private static String text(JsonNode node, String field) throws IOException {
        JsonNode value = node.get(field);
        if (value == null || !value.isTextual()) {
            throw new IOException("field " + field + " is missing");
        }
        return value.asText();
    }

    @Override
    public String toString() {
        return type + (array ? "[]" : "");
    }
}
