package io.lakebase.spark.connection;

import io.lakebase.spark.core.LakebaseException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.SQLException;

/**
 * pgjdbc's COPY API ({@code PGConnection.getCopyAPI()}), called reflectively: the jar is built against Spark's jars
 * alone (no Postgres driver at build time), and Spark loads the driver from the user's class path at run time.
 * Methods are looked up once per COPY; each call moves a row or a buffer, so reflection costs nothing measurable.
 */
public final class PgCopyApi {

    private PgCopyApi() {}

    /** Starts {@code sql} with the CopyManager method {@code start} ("copyIn" or "copyOut"); returns its handle. */
    public static Object start(Connection conn, String start, String sql) throws SQLException {
        try {
            Class<?> pgConnection = type(conn, "org.postgresql.PGConnection");
            Object manager = pgConnection.getMethod("getCopyAPI").invoke(conn.unwrap(pgConnection));
            return manager.getClass().getMethod(start, String.class).invoke(manager, sql);
        } catch (ReflectiveOperationException e) {
            throw failure(e);
        }
    }

    /** A method of the pgjdbc interface {@code typeName} (e.g. org.postgresql.copy.CopyOut). */
    public static Method method(Connection conn, String typeName, String name, Class<?>... args) throws SQLException {
        try {
            Method method = type(conn, typeName).getMethod(name, args);
            // A public method of a public interface: access is allowed, so skip its check on every call (the
            // reader calls readFromCopy once per row; the check was ~8 % of a read's task time in bench/profile).
            method.setAccessible(true);
            return method;
        } catch (ReflectiveOperationException e) {
            throw failure(e);
        }
    }

    /** Calls {@code method} on {@code target}, with the driver's SQLException as thrown. */
    public static Object call(Method method, Object target, Object... args) throws SQLException {
        try {
            return method.invoke(target, args);
        } catch (ReflectiveOperationException e) {
            throw failure(e);
        }
    }

    /** The pgjdbc class {@code name}, as loaded for {@code conn}. */
    public static Class<?> type(Connection conn, String name) throws SQLException {
        try {
            return Class.forName(name, false, conn.getClass().getClassLoader());
        } catch (ClassNotFoundException e) {
            throw failure(e);
        }
    }

    public static SQLException failure(ReflectiveOperationException e) {
        if (!(e instanceof InvocationTargetException)) {
            return new LakebaseException.Sql("lakebase: the connection is not a pgjdbc connection with the COPY API ("
                    + e + "); put the Postgres JDBC driver (org.postgresql:postgresql 42.x) on the class path",
                    "0A000", e);
        }
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
