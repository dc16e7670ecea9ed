package io.lakebase.spark.read;

import io.lakebase.spark.connection.PgCopyApi;
import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * One {@code COPY ... TO STDOUT} on a pgjdbc connection: {@link #next} returns one CopyData message (Postgres sends
 * one row per message) until the COPY ends. A COPY abandoned midway leaves the connection unusable (pgjdbc #1290):
 * the reader closes the connection instead of cancelling.
 */
final class CopyOutStream {

    private final Object copyOut;
    private final Method read;

    private CopyOutStream(Object copyOut, Method read) {
        this.copyOut = copyOut;
        this.read = read;
    }

    static CopyOutStream open(Connection conn, String sql) throws SQLException {
        Method read = PgCopyApi.method(conn, "org.postgresql.copy.CopyOut", "readFromCopy");
        return new CopyOutStream(PgCopyApi.start(conn, "copyOut", sql), read);
    }

    /** The next message, or null when the COPY has ended (the server's CommandComplete was read). */
    byte[] next() throws SQLException {
        return (byte[]) PgCopyApi.call(read, copyOut);
    }
}
