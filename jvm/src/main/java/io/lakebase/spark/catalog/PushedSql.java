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
 * {@code DELETE FROM lb.s.t WHERE ...} as one Postgres statement (one transaction: all matching rows or none). The
 * condition is compiled by Spark's Postgres dialect, the same translation its filter pushdown uses, so a DELETE takes
 * what a SELECT pushes.
 */
final class DeleteSql {

    private DeleteSql() {}

    /** The WHERE clause for {@code predicates} ("" for none or always-true), or null if a part cannot be pushed. */
    static String compile(Map<String, String> options, Predicate[] predicates) {
        JdbcDialect dialect = dialect(options);
        StringBuilder where = new StringBuilder();
        for (Predicate predicate : predicates) {
            if (predicate instanceof AlwaysTrue) {
                continue;
            }
            Option<String> sql = dialect.compileExpression(predicate);
            if (sql.isEmpty()) {
                return null;
            }
            where.append(where.length() == 0 ? " WHERE (" : " AND (").append(sql.get()).append(')');
        }
        return where.toString();
    }

    static void run(Map<String, String> options, Identifier table, Predicate[] predicates) {
        String where = compile(options, predicates);
        if (where == null) {
            throw new IllegalStateException("lakebase: Spark asked to delete on a condition it was told cannot be "
                    + "pushed to Postgres");
        }
        JdbcDialect dialect = dialect(options);
        StringBuilder name = new StringBuilder();
        for (String part : table.namespace()) {
            name.append(dialect.quoteIdentifier(part)).append('.');
        }
        String sql = "DELETE FROM " + name + dialect.quoteIdentifier(table.name()) + where;
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
