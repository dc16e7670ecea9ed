package io.lakebase.spark.catalog;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.connection.Logins;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.connector.catalog.Identifier;

/**
 * What {@code SHOW TABLES} lists: every relation of a schema a SELECT can read (tables, views, materialized views,
 * partitioned and foreign tables), where Spark's JDBC catalog asks pgjdbc for type {@code TABLE} only.
 */
public final class Relations {

    /** pg_class.relkind: table, view, materialized view, partitioned table, foreign table. */
    static final String KINDS = "'r', 'v', 'm', 'p', 'f'";
    private static final String SQL = "SELECT c.relname FROM pg_catalog.pg_class c "
            + "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            + "WHERE n.nspname = ? AND c.relkind IN (" + KINDS + ") ORDER BY c.relname";

    private Relations() {}

    public static Identifier[] list(Map<String, String> options, String[] namespace) {
        List<Identifier> out = new ArrayList<>();
        try (Connection connection = Logins.open(LakebaseOptions.parse(options));
                PreparedStatement statement = connection.prepareStatement(SQL)) {
            statement.setString(1, namespace[0]);
            try (ResultSet rows = statement.executeQuery()) {
                while (rows.next()) {
                    out.add(Identifier.of(namespace, rows.getString(1)));
                }
            }
        } catch (SQLException e) {
            throw new IllegalStateException("lakebase: cannot list the relations of schema " + namespace[0] + ": "
                    + e.getMessage(), e);
        }
        return out.toArray(new Identifier[0]);
    }
}
