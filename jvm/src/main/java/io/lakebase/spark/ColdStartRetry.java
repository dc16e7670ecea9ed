package io.lakebase.spark;

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
 * Retries a login, with bounded, jittered exponential backoff, while the failure looks like a Lakebase endpoint waking from
 * scale-to-zero (connection refused or reset, "the database system is starting up", the proxy's "couldn't connect
 * to compute node"). Anything else, authentication and TLS setup errors included, fails at once.
 */
final class ColdStartRetry {

    /** One login attempt. */
    interface Attempt {
        Connection connect() throws SQLException;
    }

    /** Waits between attempts; a parameter so tests need not sleep. */
    interface Sleeper {
        void sleep(long millis) throws InterruptedException;
    }

    static final long FIRST_DELAY_MS = 250;
    static final long MAX_DELAY_MS = 4_000;

    private final long timeoutMs;
    private final LongSupplier nanoClock;
    private final Sleeper sleeper;
    /** Uniform in [0, 1): spreads the retries of many JVMs. */
    private final DoubleSupplier jitter;

    ColdStartRetry(long timeoutMs) {
        this(timeoutMs, System::nanoTime, Thread::sleep, () -> ThreadLocalRandom.current().nextDouble());
    }

    ColdStartRetry(long timeoutMs, LongSupplier nanoClock, Sleeper sleeper, DoubleSupplier jitter) {
        this.timeoutMs = timeoutMs;
        this.nanoClock = nanoClock;
        this.sleeper = sleeper;
        this.jitter = jitter;
    }

    /** Runs {@code attempt}, retrying cold-start failures until {@code timeoutMs} has passed. */
    Connection run(Attempt attempt, String hosts) throws SQLException {
        long deadline = nanoClock.getAsLong() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        long delayMs = FIRST_DELAY_MS;
        for (int attempts = 1; ; attempts++) {
            try {
                return attempt.connect();
            } catch (SQLException e) {
                if (!isColdStart(e)) {
                    throw e;
                }
                long remainingMs = TimeUnit.NANOSECONDS.toMillis(deadline - nanoClock.getAsLong());
                if (remainingMs <= 0) {
                    throw attempts == 1 ? e : exhausted(e, attempts, hosts);
                }
                // Full jitter in [delay/2, delay]: a fleet of executors that failed together must not retry
                // together (they would meet the waking endpoint in lockstep, again and again).
                long jittered = delayMs / 2 + (long) (jitter.getAsDouble() * (delayMs - delayMs / 2));
                long sleepMs = Math.min(Math.max(jittered, 1), remainingMs);
                ProviderStats.COLD_START_RETRIES.incrementAndGet();
                Log.fine("login to %s failed with SQLSTATE %s (attempt %d); retrying in %d ms in case the endpoint "
                        + "is starting", hosts, e.getSQLState(), attempts, sleepMs);
                try {
                    sleeper.sleep(sleepMs);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    e.addSuppressed(ie);
                    throw e;
                }
                delayMs = Math.min(delayMs * 2, MAX_DELAY_MS);
            }
        }
    }

    private SQLException exhausted(SQLException last, int attempts, String hosts) {
        return new LakebaseException.Sql("lakebase: could not log in to " + hosts + " after " + attempts + " attempts over "
                + timeoutMs / 1000.0 + " s (the endpoint may be starting from scale-to-zero, stopped, or unreachable "
                + "from this host; raise " + LakebaseOptions.COLD_START_TIMEOUT_MS + " to wait longer): "
                + last.getMessage(), last.getSQLState(), last.getErrorCode(), last);
    }

    /** True for failures that a starting endpoint produces and that a later attempt can get past. */
    static boolean isColdStart(SQLException e) {
        String state = e.getSQLState();
        String message = e.getMessage() == null ? "" : e.getMessage().toLowerCase(Locale.ROOT);
        if (message.contains("couldn't connect to compute node")) {
            return true; // the Lakebase (Neon) proxy while the compute is starting
        }
        if ("57P03".equals(state) || "57P01".equals(state)) {
            return true; // cannot_connect_now (starting up); admin_shutdown (suspending under us)
        }
        if (state == null || !state.startsWith("08") || state.equals("08004")) {
            return false; // 08004: the server refused the connection outright (e.g. no SSL): not transient
        }
        for (Throwable t = e.getCause(); t != null; t = t.getCause()) {
            if (t instanceof UnknownHostException || t instanceof SSLException
                    || t instanceof GeneralSecurityException || t instanceof FileNotFoundException) {
                return false; // a wrong host name or a TLS/certificate setup error will not heal by waiting
            }
        }
        return true;
    }
}
