package io.lakebase.spark;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * One {@code COPY ... FROM STDIN} on a pgjdbc connection, through {@code PGConnection.getCopyAPI().copyIn(sql)}.
 *
 * <p>pgjdbc is called reflectively: the jar is built against Spark's jars alone (no Postgres driver at build time),
 * and Spark loads the driver from the user's class path at run time. The methods are looked up once per stream;
 * each call moves a whole buffer (tens of KiB), so the reflection costs nothing measurable.
 */
final class CopyStream {

    private final Object copyIn;
    private final Method write;
    private final Method end;
    private final Method cancel;
    private boolean active = true;

    private CopyStream(Object copyIn, Class<?> copyInType) throws NoSuchMethodException {
        this.copyIn = copyIn;
        this.write = copyInType.getMethod("writeToCopy", byte[].class, int.class, int.class);
        this.end = copyInType.getMethod("endCopy");
        this.cancel = copyInType.getMethod("cancelCopy");
    }

    /** Starts {@code sql} (a {@code COPY ... FROM STDIN}) on {@code conn}, which must be a pgjdbc connection. */
    static CopyStream open(Connection conn, String sql) throws SQLException {
        ClassLoader loader = conn.getClass().getClassLoader();
        try {
            Class<?> pgConnection = Class.forName("org.postgresql.PGConnection", false, loader);
            Object pg = conn.unwrap(pgConnection);
            Object manager = pgConnection.getMethod("getCopyAPI").invoke(pg);
            Object copyIn = manager.getClass().getMethod("copyIn", String.class).invoke(manager, sql);
            Class<?> copyInType = Class.forName("org.postgresql.copy.CopyIn", false, loader);
            return new CopyStream(copyIn, copyInType);
        } catch (ClassNotFoundException | NoSuchMethodException | IllegalAccessException e) {
            throw new LakebaseException.Sql("lakebase: the connection is not a pgjdbc connection with the COPY API ("
                    + e + "); put the Postgres JDBC driver (org.postgresql:postgresql 42.x) on the class path",
                    "0A000", e);
        } catch (InvocationTargetException e) {
            throw unwrap(e);
        }
    }

    void write(byte[] bytes, int length) throws SQLException {
        call(write, bytes, 0, length);
    }

    /** Finishes the COPY; returns the rows the server took. */
    long end() throws SQLException {
        active = false;
        return (Long) call(end);
    }

    /** Abandons the COPY (the server discards what it received); safe to call more than once. */
    void cancel() {
        if (!active) {
            return;
        }
        active = false;
        try {
            call(cancel);
        } catch (SQLException e) {
            Log.fine("cancelling COPY failed (SQLSTATE %s); the transaction is rolled back anyway", e.getSQLState());
        }
    }

    private Object call(Method method, Object... args) throws SQLException {
        try {
            return method.invoke(copyIn, args);
        } catch (IllegalAccessException e) {
            throw new LakebaseException.Sql("lakebase: cannot call pgjdbc's " + method.getName(), "0A000", e);
        } catch (InvocationTargetException e) {
            throw unwrap(e);
        }
    }

    private static SQLException unwrap(InvocationTargetException e) {
        Throwable cause = e.getCause();
        if (cause instanceof SQLException) {
            return (SQLException) cause;
        }
        if (cause instanceof RuntimeException) {
            throw (RuntimeException) cause;
        }
        return new LakebaseException.Sql("lakebase: COPY failed: " + cause, "58000", cause);
    }
}
