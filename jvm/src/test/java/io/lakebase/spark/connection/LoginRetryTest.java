package io.lakebase.spark.connection;

import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.Test;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNotEquals;
import static org.junit.Assert.assertNotNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

/** The login policy: cold start and connection limit each retried inside their own budget, jittered. */
public class LoginRetryTest {

    private final AtomicLong now = new AtomicLong();
    private final List<Long> sleeps = new ArrayList<>();

    private LoginRetry retry(long coldMs, long limitMs, double jitter) {
        return new LoginRetry(coldMs, limitMs, now::get, ms -> {
            sleeps.add(ms);
            now.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
        }, () -> jitter);
    }

    /** A login that fails with {@code state} until {@code untilMs} of (fake) time, then succeeds. */
    private LoginRetry.Attempt failingUntil(String state, long untilMs, AtomicInteger attempts) {
        return () -> {
            attempts.incrementAndGet();
            if (now.get() < TimeUnit.MILLISECONDS.toNanos(untilMs)) {
                throw new SQLException("FATAL: sorry, too many clients already", state);
            }
            return (Connection) java.lang.reflect.Proxy.newProxyInstance(getClass().getClassLoader(),
                    new Class<?>[] {Connection.class}, (p, m, a) -> null);
        };
    }

    @Test
    public void tooManyConnectionsWaitsInsideItsOwnBudgetNotTheColdStartOne() throws SQLException {
        AtomicInteger attempts = new AtomicInteger();
        // 45 s of 53300: longer than the 30 s cold-start budget, inside the 60 s connection-limit one.
        assertNotNull(retry(30_000, 60_000, 1.0).run(failingUntil("53300", 45_000, attempts), "host"));
        assertTrue(attempts.get() > 5);
        for (long s : sleeps) {
            assertTrue(s <= LoginRetry.MAX_DELAY_MS);
        }
    }

    @Test
    public void tooManyConnectionsPastTheBudgetNamesTheLimitAndTheFix() {
        AtomicInteger attempts = new AtomicInteger();
        try {
            retry(30_000, 0, 1.0).run(failingUntil("53300", Long.MAX_VALUE / 2_000_000, attempts), "host:5432");
            fail("expected the connection-limit error");
        } catch (SQLException e) {
            assertEquals("53300", e.getSQLState());
            assertTrue(e.getMessage(), e.getMessage().contains("max_connections"));
            assertTrue(e.getMessage(), e.getMessage().contains("numPartitions"));
            assertTrue(e.getMessage(), e.getMessage().contains(LakebaseOptions.CONNECTION_LIMIT_TIMEOUT_MS));
            assertEquals("budget 0: no retry", 1, attempts.get());
        }
    }

    @Test
    public void coldStartIsRetriedUntilItsBudgetThenFailsNamingTheOption() {
        AtomicInteger attempts = new AtomicInteger();
        try {
            retry(10_000, 60_000, 0.5).run(failingUntil("57P03", 100_000, attempts), "host:5432");
            fail("expected the cold-start error");
        } catch (SQLException e) {
            assertEquals("57P03", e.getSQLState());
            assertTrue(e.getMessage(), e.getMessage().contains(LakebaseOptions.COLD_START_TIMEOUT_MS));
            assertTrue(attempts.get() > 3);
        }
    }

    @Test
    public void authenticationFailuresAreNotRetried() {
        AtomicInteger attempts = new AtomicInteger();
        try {
            retry(30_000, 60_000, 0.5).run(failingUntil("28P01", 100_000, attempts), "host");
            fail("expected the auth failure");
        } catch (SQLException e) {
            assertEquals("28P01", e.getSQLState());
            assertEquals(1, attempts.get());
        }
    }

    /** Executors that failed together must not retry together: real jitter spreads their waits. */
    @Test
    public void retriesOfSeveralJvmsDoNotLineUp() throws SQLException {
        List<List<Long>> schedules = new ArrayList<>();
        for (int jvm = 0; jvm < 4; jvm++) {
            List<Long> mine = new ArrayList<>();
            AtomicLong clock = new AtomicLong();
            LoginRetry real = new LoginRetry(30_000, 60_000, clock::get, ms -> {
                mine.add(ms);
                clock.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
            }, () -> java.util.concurrent.ThreadLocalRandom.current().nextDouble());
            AtomicInteger attempts = new AtomicInteger();
            real.run(() -> {
                if (attempts.incrementAndGet() < 6) {
                    throw new SQLException("the database system is starting up", "57P03");
                }
                return null;
            }, "host");
            schedules.add(mine);
            long delay = LoginRetry.FIRST_DELAY_MS;
            for (long s : mine) {
                assertTrue("each wait in [delay/2, delay]", s >= delay / 2 && s <= delay);
                delay = Math.min(delay * 2, LoginRetry.MAX_DELAY_MS);
            }
        }
        for (int i = 1; i < schedules.size(); i++) {
            assertNotEquals("four JVMs, four different retry schedules", schedules.get(0), schedules.get(i));
        }
    }

    @Test
    public void classifiesTheFailures() {
        assertEquals(LoginRetry.Failure.CONNECTION_LIMIT, LoginRetry.classify(new SQLException("x", "53300")));
        assertEquals(LoginRetry.Failure.COLD_START, LoginRetry.classify(new SQLException("x", "57P03")));
        assertEquals(LoginRetry.Failure.COLD_START, LoginRetry.classify(new SQLException("refused", "08001")));
        assertEquals(LoginRetry.Failure.PERMANENT, LoginRetry.classify(new SQLException("x", "08004")));
        assertEquals(LoginRetry.Failure.PERMANENT, LoginRetry.classify(new SQLException("x", "28000")));
        assertEquals(LoginRetry.Failure.PERMANENT, LoginRetry.classify(
                new SQLException("x", "08001", new java.net.UnknownHostException("nope"))));
    }
}
