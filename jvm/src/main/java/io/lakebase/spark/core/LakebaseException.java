package io.lakebase.spark.core;

import java.sql.SQLException;
import org.apache.spark.SparkThrowable;

/**
 * The provider's errors. They implement {@link SparkThrowable} because Spark 4 rethrows a SparkThrowable from a
 * connection attempt unchanged, while it wraps any other exception into a generic "Couldn't connect to the
 * database" that hides the message saying what to fix. Spark 3.5 shows either kind as is.
 *
 * <p>{@code getCondition} is abstract in Spark 4 and {@code getErrorClass} in 3.5; both are implemented so one jar
 * loads on both. Messages never hold a token or the broker secret.
 */
public final class LakebaseException {

    /** A login or token fetch failed (the SQLSTATE tells authentication from network failures). */
    static final String CONNECTION = "LAKEBASE_CONNECTION";
    /** An option is missing, malformed or contradicts another: fix the options, no retry helps. */
    static final String INVALID_OPTION = "LAKEBASE_INVALID_OPTION";
    /** The workspace refused the token request (HTTP 4xx): every task fails at once with the fix. */
    static final String WORKSPACE_REFUSED = "LAKEBASE_WORKSPACE_REFUSED";
    /** A partition of a COPY write failed; the message says what the target holds and how to finish. */
    public static final String WRITE_FAILED = "LAKEBASE_WRITE_FAILED";
    /** A SQL statement the catalog cannot run (UPDATE, MERGE, a DELETE Postgres cannot take whole). */
    static final String UNSUPPORTED_STATEMENT = "LAKEBASE_UNSUPPORTED_STATEMENT";
    /** A consistent read's snapshot can no longer be imported: read again. */
    static final String SNAPSHOT_LOST = "LAKEBASE_SNAPSHOT_LOST";

    private LakebaseException() {}

    /** Each kind's error condition, under the name each Spark version asks for. */
    public interface Condition extends SparkThrowable {
        /** One of the conditions above. */
        String condition();

        // No @Override: Spark 3.5's interface has no getCondition, and the jar must compile against either.
        default String getCondition() {
            return condition();
        }

        @Override
        @SuppressWarnings("deprecation")
        default String getErrorClass() {
            return condition();
        }
    }

    /** Bad options: Spark surfaces it as an IllegalArgumentException (PySpark: {@code IllegalArgumentException}). */
    public static final class Options extends IllegalArgumentException implements Condition {
        private static final long serialVersionUID = 1L;

    public     Options(String message) {
            super(message);
        }

        @Override
        public String condition() {
            return INVALID_OPTION;
        }

        @Override
        public String getSqlState() {
            return "22023"; // invalid_parameter_value
        }
    }

    /** A statement the catalog cannot run; the message names what does it instead. */
    public static final class Unsupported extends UnsupportedOperationException implements Condition {
        private static final long serialVersionUID = 1L;

        public Unsupported(String message) {
            super(message);
        }

        @Override
        public String condition() {
            return UNSUPPORTED_STATEMENT;
        }

        @Override
        public String getSqlState() {
            return "0A000"; // feature_not_supported
        }
    }

    /** A catalog write the driver could not plan or finish; the message says what the table holds. */
    public static final class WriteFailed extends IllegalStateException implements Condition {
        private static final long serialVersionUID = 1L;

        public WriteFailed(String message, Throwable cause) {
            super(message, cause);
        }

        @Override
        public String condition() {
            return WRITE_FAILED;
        }

        @Override
        public String getSqlState() {
            return "58000"; // system_error: the write's coordination failed
        }
    }

    /**
     * The workspace (through the broker) refused a token request, HTTP 4xx: no retry gets past it. The token cache
     * drops its token and fails every request with this for a while instead of serving a stale token.
     */
    public static final class Refused extends SQLException implements Condition {
        private static final long serialVersionUID = 1L;
        /** SQLSTATE 08004: the server rejected the establishment of the connection. */
        static final String SQLSTATE = "08004";

    public     Refused(String message, Throwable cause) {
            super(message, SQLSTATE, cause);
        }

        @Override
        public String condition() {
            return WORKSPACE_REFUSED;
        }

        @Override
        public String getSqlState() {
            return getSQLState();
        }
    }

    /** A failed login or token fetch; keeps the SQLSTATE so callers can still tell auth from network failures. */
    public static final class Sql extends SQLException implements Condition {
        private static final long serialVersionUID = 1L;

    public     Sql(String message, String sqlState) {
            super(message, sqlState);
        }

    public     Sql(String message, String sqlState, Throwable cause) {
            super(message, sqlState, cause);
        }

    public     Sql(String message, String sqlState, int vendorCode, Throwable cause) {
            super(message, sqlState, vendorCode, cause);
        }

        @Override
        public String condition() {
            return CONNECTION;
        }

        @Override
        public String getSqlState() {
            return getSQLState();
        }
    }

    /** A consistent read's snapshot could not be imported; keeps the server's SQLSTATE. */
    public static final class SnapshotLost extends SQLException implements Condition {
        private static final long serialVersionUID = 1L;

    public     SnapshotLost(String message, String sqlState, int vendorCode, Throwable cause) {
            super(message, sqlState, vendorCode, cause);
        }

        @Override
        public String condition() {
            return SNAPSHOT_LOST;
        }

        @Override
        public String getSqlState() {
            return getSQLState();
        }
    }
}
