package io.lakebase.spark.read;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.QuotedNames;
import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * The COPY reader's own options ({@code lakebase.read.*}), set by {@code lakebase_spark.read}: the table, what to
 * select for each column and how its binary value is decoded, and one predicate per partition. The Python side
 * plans them (quoting every name); the table is checked to be nothing but quoted identifiers.
 */
final class ReadOptions implements Serializable {

    private static final long serialVersionUID = 1L;

    static final String TABLE = "lakebase.read.table";
    /** JSON list of {@code {"name", "sql", "type"}}: the Spark column, its SELECT expression, its binary type. */
    static final String COLUMNS = "lakebase.read.columns";
    /** JSON list of SQL predicates, one per partition (the planner's exact ranges). */
    static final String PREDICATES = "lakebase.read.predicates";
    /** Rows per columnar batch. */
    static final String BATCH_ROWS = "lakebase.read.batch.rows";
    static final int DEFAULT_BATCH_ROWS = 4096;

    private static final String PLANNED = "; read with lakebase_spark.read(...), which sets it";

    /** One selected column. */
    static final class Column implements Serializable {
        private static final long serialVersionUID = 1L;
        final String name;
        final String sql;
        final PgBinaryType type;

        Column(String name, String sql, PgBinaryType type) {
            this.name = name;
            this.sql = sql;
            this.type = type;
        }
    }

    final String table;
    final List<Column> columns;
    final List<String> predicates;
    final int batchRows;

    private ReadOptions(String table, List<Column> columns, List<String> predicates, int batchRows) {
        this.table = table;
        this.columns = columns;
        this.predicates = predicates;
        this.batchRows = batchRows;
    }

    static ReadOptions parse(Map<String, String> options) {
        String table = options.get(TABLE);
        if (table == null || !QuotedNames.QUALIFIED.matcher(table).matches()) {
            throw new LakebaseException.Options("lakebase: option " + TABLE + " must be a quoted table name "
                    + "(\"schema\".\"table\")" + PLANNED);
        }
        ObjectMapper json = new ObjectMapper();
        List<Column> columns = new ArrayList<>();
        for (JsonNode node : array(json, options, COLUMNS)) {
            String name = node.path("name").asText(null);
            String sql = node.path("sql").asText(null);
            String type = node.path("type").asText(null);
            if (name == null || sql == null || type == null) {
                throw new LakebaseException.Options("lakebase: every entry of " + COLUMNS + " needs name, sql and "
                        + "type" + PLANNED);
            }
            columns.add(new Column(name, sql, PgBinaryType.named(type)));
        }
        List<String> predicates = new ArrayList<>();
        for (JsonNode node : array(json, options, PREDICATES)) {
            predicates.add(node.asText());
        }
        if (predicates.isEmpty()) {
            predicates.add("");
        }
        int batchRows = DEFAULT_BATCH_ROWS;
        String rows = options.get(BATCH_ROWS);
        if (rows != null) {
            try {
                batchRows = Integer.parseInt(rows.trim());
            } catch (NumberFormatException e) {
                batchRows = 0;
            }
            if (batchRows < 1) {
                throw new LakebaseException.Options("lakebase: option " + BATCH_ROWS + " must be a whole number of "
                        + "at least 1, got '" + rows + "'");
            }
        }
        return new ReadOptions(table, Collections.unmodifiableList(columns), Collections.unmodifiableList(predicates),
                batchRows);
    }

    private static JsonNode array(ObjectMapper json, Map<String, String> options, String key) {
        String text = options.get(key);
        JsonNode node;
        try {
            node = text == null ? null : json.readTree(text);
        } catch (IOException e) {
            node = null;
        }
        if (node == null || !node.isArray()) {
            throw new LakebaseException.Options("lakebase: option " + key + " must be a JSON list" + PLANNED);
        }
        return node;
    }

    /** The column of this name, or null. */
    Column column(String name) {
        for (Column c : columns) {
            if (c.name.equals(name)) {
                return c;
            }
        }
        return null;
    }
}
