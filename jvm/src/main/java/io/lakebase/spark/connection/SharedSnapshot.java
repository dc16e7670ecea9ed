package io.lakebase.spark.connection;

import io.lakebase.spark.core.LakebaseException;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * Makes a new connection see the snapshot the driver exported for a consistent read: a REPEATABLE READ transaction
 * whose first statement is {@code SET TRANSACTION SNAPSHOT}, so every partition of the read (and the driver's
 * schema lookup) sees the database at one moment (what DuckDB's Postgres scanner does).
 *
 * <p>Spark's Postgres dialect leaves autocommit off for reads with a fetch size; with autocommit already off here,
 * the transaction also holds when the fetch size is 0. Spark commits it when the partition is read.
 */
final class SharedSnapshot {

    private SharedSnapshot() {}

    /** Imports {@code options.snapshot} into {@code connection}; on failure closes it and says why and what to do. */
    static Connection importInto(Connection connection, LakebaseOptions options) throws SQLException {
        try {
            connection.setAutoCommit(false);
            connection.setTransactionIsolation(Connection.TRANSACTION_REPEATABLE_READ);
            try (Statement statement = connection.createStatement()) {
                // Checked against SNAPSHOT_PATTERN when parsed: hex digits and dashes only.
                statement.execute("SET TRANSACTION SNAPSHOT '" + options.snapshot + "'");
            }
            return connection;
        } catch (SQLException e) {
            try {
                connection.close();
            } catch (SQLException ignored) {
                // The import's error is the one to report.
            }
            throw lost(e, options);
        }
    }

    static SQLException lost(SQLException e, LakebaseOptions options) {
        // The same words as Python's reading/snapshots.lost_message.
        return new LakebaseException.SnapshotLost("lakebase: this consistent read's snapshot " + options.snapshot
                + " cannot be imported on " + options.hosts() + " (SQLSTATE " + e.getSQLState() + ": "
                + e.getMessage() + "). The transaction that exported it has ended (the read ran longer than its "
                + "snapshot is held, the driver's coordinating connection was lost, or Postgres restarted), or this "
                + "host is another server than the one that exported it. Read again (a new read exports a new "
                + "snapshot), or read with consistent=False to let each partition see its own moment",
                e.getSQLState(), e.getErrorCode(), e);
    }
}
