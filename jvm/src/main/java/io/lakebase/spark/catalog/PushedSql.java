package io.lakebase.spark.catalog;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.connection.Logins;
import io.lakebase.spark.core.Log;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.expressions.filter.AlwaysTrue;
import org.apache.spark.sql.connector.expressions.filter.Predicate;
import org.apache.spark.sql.jdbc.JdbcDialect;
import org.apache.spark.sql.jdbc.JdbcDialects;
import scala.Option;

/**
 * Spark predicates as Postgres SQL, compiled by Spark's Postgres dialect (the translation its filter pushdown uses):
 * the COPY scan's WHERE, and {@code DELETE FROM lb.s.t WHERE ...} as one Postgres statement (one transaction: all
 * matching rows or none), so a DELETE takes what a SELECT pushes.
 */
final class PushedSql {

    private PushedSql() {}

    /** {@code predicates} ANDed ("" for none or always-true), or null if a part cannot be compiled. */
    static String condition(Map<String, String> options, Predicate[] predicates) {
        JdbcDialect dialect = dialect(options);
        StringBuilder condition = new StringBuilder();
        for (Predicate predicate : predicates) {
            if (predicate instanceof AlwaysTrue) {
                continue;
            }
            Option<String> sql = dialect.compileExpression(predicate);
            if (sql.isEmpty()) {
                return null;
            }
            condition.append(condition.length() == 0 ? "(" : " AND (").append(sql.get()).append(')');
        }
        return condition.toString();
    }

    static void delete(Map<String, String> options, Identifier table, Predicate[] predicates) {
        String condition = condition(options, predicates);
        if (condition == null) {
            throw new IllegalStateException("lakebase: Spark asked to delete on a condition it was told cannot be "
                    + "pushed to Postgres");
        }
        JdbcDialect dialect = dialect(options);
        StringBuilder name = new StringBuilder();
        for (String part : table.namespace()) {
            name.append(dialect.quoteIdentifier(part)).append('.');
        }
        String sql = "DELETE FROM " + name + dialect.quoteIdentifier(table.name())
                + (condition.isEmpty() ? "" : " WHERE " + condition);
        try (Connection connection = Logins.open(LakebaseOptions.parse(options));
                Statement statement = connection.createStatement()) {
            connection.setAutoCommit(true); // one statement, one transaction
            int rows = statement.executeUpdate(sql);
            Log.fine("deleted %d rows from %s", rows, table);
        } catch (SQLException e) {
            throw new IllegalStateException("lakebase: DELETE FROM " + table + " failed, nothing was deleted: "
                    + e.getMessage(), e);
        }
    }

    private static JdbcDialect dialect(Map<String, String> options) {
        return JdbcDialects.get(options.get("url"));
    }
}
