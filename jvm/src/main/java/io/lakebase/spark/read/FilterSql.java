package io.lakebase.spark.read;

import java.util.Map;
import org.apache.spark.sql.jdbc.JdbcDialect;
import org.apache.spark.sql.sources.And;
import org.apache.spark.sql.sources.EqualTo;
import org.apache.spark.sql.sources.Filter;
import org.apache.spark.sql.sources.GreaterThan;
import org.apache.spark.sql.sources.GreaterThanOrEqual;
import org.apache.spark.sql.sources.In;
import org.apache.spark.sql.sources.IsNotNull;
import org.apache.spark.sql.sources.IsNull;
import org.apache.spark.sql.sources.LessThan;
import org.apache.spark.sql.sources.LessThanOrEqual;
import org.apache.spark.sql.sources.Not;
import org.apache.spark.sql.sources.Or;

/**
 * Spark filters as a Postgres WHERE clause, for the COPY reader: what Spark's JDBC reader pushes, minus order
 * comparisons on text (Postgres' collation is not Spark's byte order) and on columns read as their text output. Values
 * are rendered by the Postgres dialect's {@code compileValue}, as the JDBC reader renders them. Spark evaluates every
 * filter again on the rows, so a pushed filter only saves work; it can never change the result.
 */
final class FilterSql {

    private final Map<String, ReadOptions.Column> columns;
    private final JdbcDialect dialect;

    FilterSql(Map<String, ReadOptions.Column> columns, JdbcDialect dialect) {
        this.columns = columns;
        this.dialect = dialect;
    }

    /** The filter as SQL, or null when it is not pushed. */
    String compile(Filter filter) {
        if (filter instanceof And) {
            return both(((And) filter).left(), ((And) filter).right(), " AND ");
        }
        if (filter instanceof Or) {
            return both(((Or) filter).left(), ((Or) filter).right(), " OR ");
        }
        if (filter instanceof Not) {
            String inner = compile(((Not) filter).child());
            return inner == null ? null : "(NOT " + inner + ")";
        }
        if (filter instanceof IsNull) {
            String column = column(((IsNull) filter).attribute(), false);
            return column == null ? null : "(" + column + " IS NULL)";
        }
        if (filter instanceof IsNotNull) {
            String column = column(((IsNotNull) filter).attribute(), false);
            return column == null ? null : "(" + column + " IS NOT NULL)";
        }
        if (filter instanceof EqualTo) {
            return compare(((EqualTo) filter).attribute(), "=", ((EqualTo) filter).value(), false);
        }
        if (filter instanceof GreaterThan) {
            return compare(((GreaterThan) filter).attribute(), ">", ((GreaterThan) filter).value(), true);
        }
        if (filter instanceof GreaterThanOrEqual) {
            GreaterThanOrEqual f = (GreaterThanOrEqual) filter;
            return compare(f.attribute(), ">=", f.value(), true);
        }
        if (filter instanceof LessThan) {
            return compare(((LessThan) filter).attribute(), "<", ((LessThan) filter).value(), true);
        }
        if (filter instanceof LessThanOrEqual) {
            LessThanOrEqual f = (LessThanOrEqual) filter;
            return compare(f.attribute(), "<=", f.value(), true);
        }
        if (filter instanceof In) {
            In in = (In) filter;
            String column = column(in.attribute(), false);
            if (column == null || in.values().length == 0) {
                return null;
            }
            StringBuilder sql = new StringBuilder("(").append(column).append(" IN (");
            for (int k = 0; k < in.values().length; k++) {
                String value = value(in.values()[k]);
                if (value == null) {
                    return null;
                }
                sql.append(k == 0 ? "" : ", ").append(value);
            }
            return sql.append("))").toString();
        }
        return null;
    }

    private String both(Filter left, Filter right, String op) {
        String l = compile(left);
        String r = compile(right);
        return l == null || r == null ? null : "(" + l + op + r + ")";
    }

    private String compare(String attribute, String op, Object value, boolean ordered) {
        String column = column(attribute, ordered);
        String literal = value(value);
        return column == null || literal == null ? null : "(" + column + " " + op + " " + literal + ")";
    }

    /** The quoted column, or null when it is not pushed ({@code ordered}: an order comparison). */
    private String column(String attribute, boolean ordered) {
        ReadOptions.Column column = columns.get(attribute);
        if (column == null || !column.sql.equals(quote(column.name))) {
            return null; // unknown, or selected as an expression (text output): compare in Spark
        }
        if (ordered && (column.type == PgBinaryType.TEXT || column.type == PgBinaryType.BYTEA)) {
            return null;
        }
        return column.sql;
    }

    /**
     * The literal, or null when it is not pushed: only values Postgres compares exactly as Spark does. No floats
     * (0.1f is not Postgres' 0.1 in a float4 comparison) and no timestamps (Spark renders them in the session's time
     * zone, Postgres reads them in the connection's).
     */
    private String value(Object value) {
        boolean exact = value instanceof String || value instanceof Integer || value instanceof Long
                || value instanceof Short || value instanceof Byte || value instanceof java.math.BigDecimal
                || value instanceof Boolean || value instanceof java.sql.Date || value instanceof java.time.LocalDate
                || value instanceof Double && Double.isFinite((Double) value);
        return exact ? String.valueOf(dialect.compileValue(value)) : null;
    }

    static String quote(String name) {
        return "\"" + name.replace("\"", "\"\"") + "\"";
    }
}
