package io.lakebase.spark.connection;

import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.Log;
import io.lakebase.spark.core.ProviderStats;
import java.io.FileNotFoundException;
import java.net.UnknownHostException;
import java.security.GeneralSecurityException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;
import javax.net.ssl.SSLException;

/**
 * The login policy for database logins that a later attempt can get past, each kind with its own budget and jittered
 * exponential backoff (so a fleet of executors that failed together does not retry in lockstep):
 * <ul>
 *   <li><b>cold start</b>: the endpoint is waking from scale-to-zero or restarting (connection refused or reset, 57P03
 *       "the database system is starting up", the proxy's "couldn't connect to compute node");</li>
 *   <li><b>connection limit</b>: SQLSTATE 53300, the compute's {@code max_connections} is reached; other tasks'
 *       connections free up as they finish, so waiting turns a failed stage into a queued one.</li>
 * </ul>
 * Anything else, authentication and TLS setup errors included, fails at once. Python's {@code postgres/connection.py} applies
 * the same policy to the package's own psycopg logins.
 */
final class LoginRetry {

    /** One login attempt. */
    interface Attempt {
        Connection connect() throws SQLException;
    }

    /** Waits between attempts; a parameter so tests need not sleep. */
    interface Sleeper {
        void sleep(long millis) throws InterruptedException;
    }

    /** Why a login failed, as far as retrying is concerned. */
    enum Failure { COLD_START, CONNECTION_LIMIT, PERMANENT }

    static final long FIRST_DELAY_MS = 250;
    static final long MAX_DELAY_MS = 4_000;
    /** SQLSTATE too_many_connections. */
    static final String TOO_MANY_CONNECTIONS = "53300";
    /** cannot_connect_now (starting up) and admin_shutdown (suspending under us): a later login gets in. */
    static final String[] COLD_START_SQLSTATES = {"57P03", "57P01"};
    /** invalid_password and invalid_authorization_specification: a refused token, replaced once. */
    static final String[] AUTH_SQLSTATES = {"28P01", "28000"};

    private final long coldStartTimeoutMs;
    private final long connectionLimitTimeoutMs;
    private final LongSupplier nanoClock;
    private final Sleeper sleeper;
    /** Uniform in [0, 1): spreads the retries of many JVMs. */
    private final DoubleSupplier jitter;

    LoginRetry(long coldStartTimeoutMs, long connectionLimitTimeoutMs) {
        this(coldStartTimeoutMs, connectionLimitTimeoutMs, System::nanoTime, Thread::sleep,
                () -> ThreadLocalRandom.current().nextDouble());
    }

    LoginRetry(long coldStartTimeoutMs, long connectionLimitTimeoutMs, LongSupplier nanoClock, Sleeper sleeper,
            DoubleSupplier jitter) {
        this.coldStartTimeoutMs = coldStartTimeoutMs;
        this.connectionLimitTimeoutMs = connectionLimitTimeoutMs;
        this.nanoClock = nanoClock;
        this.sleeper = sleeper;
        this.jitter = jitter;
    }

    /** Runs {@code attempt}, retrying each kind of transient failure until its own budget has passed. */
    Connection run(Attempt attempt, String hosts) throws SQLException {
        long started = nanoClock.getAsLong();
        long coldDelayMs = FIRST_DELAY_MS;
        long limitDelayMs = FIRST_DELAY_MS;
        for (int attempts = 1; ; attempts++) {
            try {
                return attempt.connect();
            } catch (SQLException e) {
                Failure kind = classify(e);
                if (kind == Failure.PERMANENT) {
                    throw e;
                }
                boolean limit = kind == Failure.CONNECTION_LIMIT;
                long budgetMs = limit ? connectionLimitTimeoutMs : coldStartTimeoutMs;
                long remainingMs = budgetMs - TimeUnit.NANOSECONDS.toMillis(nanoClock.getAsLong() - started);
                if (remainingMs <= 0) {
                    if (limit) {
                        throw connectionLimit(e, attempts, hosts);
                    }
                    throw attempts == 1 ? e : coldStartExhausted(e, attempts, hosts);
                }
                long delayMs = limit ? limitDelayMs : coldDelayMs;
                // Jitter in [delay/2, delay]: executors that failed together must not meet the server together again.
                long jittered = delayMs / 2 + (long) (jitter.getAsDouble() * (delayMs - delayMs / 2));
                long sleepMs = Math.min(Math.max(jittered, 1), remainingMs);
                (limit ? ProviderStats.CONNECTION_LIMIT_RETRIES : ProviderStats.COLD_START_RETRIES).incrementAndGet();
                Log.fine("login to %s failed with SQLSTATE %s (attempt %d); retrying in %d ms (%s)", hosts,
                        e.getSQLState(), attempts, sleepMs, limit ? "too many connections" : "the endpoint may be starting");
                try {
                    sleeper.sleep(sleepMs);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    e.addSuppressed(ie);
                    throw e;
                }
                if (limit) {
                    limitDelayMs = Math.min(limitDelayMs * 2, MAX_DELAY_MS);
                } else {
                    coldDelayMs = Math.min(coldDelayMs * 2, MAX_DELAY_MS);
                }
            }
        }
    }

    private SQLException coldStartExhausted(SQLException last, int attempts, String hosts) {
        return new LakebaseException.Sql("lakebase: could not log in to " + hosts + " after " + attempts + " attempts over "
                + coldStartTimeoutMs / 1000.0 + " s (the endpoint may be starting from scale-to-zero, stopped, or "
                + "unreachable from this host; raise " + LakebaseOptions.COLD_START_TIMEOUT_MS + " to wait longer): "
                + last.getMessage(), last.getSQLState(), last.getErrorCode(), last);
    }

    private SQLException connectionLimit(SQLException last, int attempts, String hosts) {
        String waited = connectionLimitTimeoutMs == 0 ? "(retries are off: " + LakebaseOptions.CONNECTION_LIMIT_TIMEOUT_MS
                + "=0)" : "for " + connectionLimitTimeoutMs / 1000.0 + " s over " + attempts + " attempts";
        return new LakebaseException.Sql("lakebase: " + hosts + " refused new connections " + waited + " with SQLSTATE "
                + TOO_MANY_CONNECTIONS + ": the compute's connection limit (max_connections) is reached. Each running "
                + "Spark task holds one connection, and a Lakebase compute allows about 100 per 0.5 CU (104 at 0.5 CU, "
                + "209 at 1 CU, 419 at 2 CU). Lower the job's concurrency (numPartitions on reads, num_partitions= on "
                + "lakebase_spark.write, fewer executor cores), use a larger compute, or raise "
                + LakebaseOptions.CONNECTION_LIMIT_TIMEOUT_MS + " to queue longer. The server said: " + last.getMessage(),
                last.getSQLState(), last.getErrorCode(), last);
    }

    /** What kind of failure {@code e} is: one a later attempt can get past (which kind), or not. */
    static Failure classify(SQLException e) {
        String state = e.getSQLState();
        String message = e.getMessage() == null ? "" : e.getMessage().toLowerCase(Locale.ROOT);
        if (TOO_MANY_CONNECTIONS.equals(state)) {
            return Failure.CONNECTION_LIMIT;
        }
        if (message.contains("couldn't connect to compute node")) {
            return Failure.COLD_START; // the Lakebase (Neon) proxy while the compute is starting
        }
        if (java.util.Arrays.asList(COLD_START_SQLSTATES).contains(state)) {
            return Failure.COLD_START;
        }
        if (state == null || !state.startsWith("08") || state.equals("08004")) {
            return Failure.PERMANENT; // 08004: the server refused the connection outright (e.g. no SSL): not transient
        }
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof UnknownHostException || t instanceof SSLException
                    || t instanceof GeneralSecurityException || t instanceof FileNotFoundException) {
                return Failure.PERMANENT; // a wrong host name or a TLS/certificate setup error will not heal by waiting
            }
        }
        return Failure.COLD_START;
    }
}
