package io.lakebase.spark.write;

import io.lakebase.spark.connection.PgCopyApi;
import io.lakebase.spark.core.Log;
import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.SQLException;

/** One {@code COPY ... FROM STDIN} on a pgjdbc connection, through {@link PgCopyApi}. */
final class CopyStream {

    private final Object copyIn;
    private final Method write;
    private final Method end;
    private final Method cancel;
    private boolean active = true;

    private CopyStream(Object copyIn, Method write, Method end, Method cancel) {
        this.copyIn = copyIn;
        this.write = write;
        this.end = end;
        this.cancel = cancel;
    }

    /** Starts {@code sql} (a {@code COPY ... FROM STDIN}) on {@code conn}, which must be a pgjdbc connection. */
    static CopyStream open(Connection conn, String sql) throws SQLException {
        String type = "org.postgresql.copy.CopyIn";
        Method write = PgCopyApi.method(conn, type, "writeToCopy", byte[].class, int.class, int.class);
        Method end = PgCopyApi.method(conn, type, "endCopy");
        Method cancel = PgCopyApi.method(conn, type, "cancelCopy");
        return new CopyStream(PgCopyApi.start(conn, "copyIn", sql), write, end, cancel);
    }

    void write(byte[] bytes, int length) throws SQLException {
        PgCopyApi.call(write, copyIn, bytes, 0, length);
    }

    /** Finishes the COPY; returns the rows the server took. */
    long end() throws SQLException {
        active = false;
        return (Long) PgCopyApi.call(end, copyIn);
    }

    /** Abandons the COPY (the server discards what it received); safe to call more than once. */
    void cancel() {
        if (!active) {
            return;
        }
        active = false;
        try {
            PgCopyApi.call(cancel, copyIn);
        } catch (SQLException e) {
            Log.fine("cancelling COPY failed (SQLSTATE %s); the transaction is rolled back anyway", e.getSQLState());
        }
    }
}
