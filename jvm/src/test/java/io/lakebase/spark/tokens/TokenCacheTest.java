package io.lakebase.spark.tokens;

import io.lakebase.spark.core.LakebaseException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.Test;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertSame;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

/** The JVM token cache's rule: fresh, stale (served while one background call runs), expired; single flight. */
public class TokenCacheTest {

    private static final TokenKey KEY = new TokenKey("http://127.0.0.1:1", "secret", null,
            new LakebaseTarget(LakebaseTarget.Kind.ENDPOINT, "projects/p/branches/b/endpoints/e"), "user");
    private static final long WAIT_MS = 5_000;

    /** A clock the test moves, and an executor that keeps background refreshes until the test runs them. */
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private final List<Runnable> background = new ArrayList<>();
    private final TokenCache cache = new TokenCache(now::get, background::add, () -> 0.0);

    private static BrokerToken token(String value) {
        return new BrokerToken(value, 60_000, 1_000); // stale after 1 s, expires after 60 s
    }

    private void advanceMs(long ms) {
        now.addAndGet(TimeUnit.MILLISECONDS.toNanos(ms));
    }

    @Test
    public void freshTokensComeFromTheCache() throws SQLException {
        AtomicInteger calls = new AtomicInteger();
        CachedToken first = cache.get(KEY, () -> token("t" + calls.incrementAndGet()), WAIT_MS);
        assertSame(first, cache.get(KEY, () -> token("t" + calls.incrementAndGet()), WAIT_MS));
        assertEquals(1, calls.get());
    }

    @Test
    public void aStaleTokenIsServedAtOnceWhileOneBackgroundCallFetchesTheNext() throws SQLException {
        AtomicInteger calls = new AtomicInteger();
        TokenCache.Fetcher fetcher = () -> token("t" + calls.incrementAndGet());
        CachedToken first = cache.get(KEY, fetcher, WAIT_MS);
        advanceMs(2_000);
        assertSame(first, cache.get(KEY, fetcher, WAIT_MS));
        assertSame(first, cache.get(KEY, fetcher, WAIT_MS));
        assertEquals("one background refresh, however many callers", 1, background.size());
        assertEquals(1, calls.get());
        background.remove(0).run();
        assertEquals("t2", cache.get(KEY, fetcher, WAIT_MS).value());
    }

    @Test
    public void aFailedBackgroundRefreshBacksOffAndTheStaleTokenIsStillServed() throws SQLException {
        AtomicInteger calls = new AtomicInteger();
        TokenCache.Fetcher down = () -> {
            calls.incrementAndGet();
            throw new SQLException("broker unreachable", "08001");
        };
        CachedToken first = cache.get(KEY, () -> token("t1"), WAIT_MS);
        advanceMs(2_000);
        assertSame(first, cache.get(KEY, down, WAIT_MS));
        background.remove(0).run(); // fails: backoff of 0.5-1 s (jitter 0 here: 0.5 s)
        assertSame(first, cache.get(KEY, down, WAIT_MS));
        assertTrue("no new attempt inside the backoff", background.isEmpty());
        advanceMs(600);
        assertSame(first, cache.get(KEY, down, WAIT_MS));
        assertEquals(1, background.size());
        background.remove(0).run();
        assertEquals(2, calls.get());
        // Within the login margin of expiry the token is no longer served: the caller sees the broker's error.
        advanceMs(60_000 - 2_600 - 5_000); // 5 s left: inside its last tenth (6 s)
        try {
            cache.get(KEY, down, WAIT_MS);
            fail("an expiring token must not be served");
        } catch (SQLException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("broker unreachable"));
        }
    }

    @Test
    public void sixteenCallersOfAnEmptyCacheCauseOneBrokerCall() throws Exception {
        TokenCache real = new TokenCache(System::nanoTime, Runnable::run, () -> 0.5);
        AtomicInteger calls = new AtomicInteger();
        CountDownLatch release = new CountDownLatch(1);
        TokenCache.Fetcher slow = () -> {
            calls.incrementAndGet();
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new SQLException(e);
            }
            return token("only");
        };
        List<Thread> threads = new ArrayList<>();
        AtomicInteger served = new AtomicInteger();
        for (int i = 0; i < 16; i++) {
            Thread t = new Thread(() -> {
                try {
                    if (real.get(KEY, slow, WAIT_MS).value().equals("only")) {
                        served.incrementAndGet();
                    }
                } catch (SQLException e) {
                    throw new AssertionError(e);
                }
            });
            threads.add(t);
            t.start();
        }
        Thread.sleep(200);
        release.countDown();
        for (Thread t : threads) {
            t.join(10_000);
        }
        assertEquals(16, served.get());
        assertEquals(1, calls.get());
    }

    /**
     * The race: a task's plain broker call is in flight when another task's login is refused. The second task joins
     * that flight, which brings back the very token the database refused; it must ask again, naming the token.
     */
    @Test
    public void aRefusedTokenBroughtBackByACallAlreadyInFlightIsReplaced() throws Exception {
        TokenCache real = new TokenCache(System::nanoTime, Runnable::run, () -> 0.5);
        CountDownLatch entered = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        TokenCache.Fetcher plain = () -> {
            entered.countDown();
            try {
                release.await();
            } catch (InterruptedException e) {
                throw new SQLException(e);
            }
            return token("revoked"); // the broker had not heard of the refusal yet
        };
        AtomicInteger renewCalls = new AtomicInteger();
        TokenCache.Fetcher renew = () -> {
            renewCalls.incrementAndGet();
            return token("renewed");
        };
        CachedToken refused = new CachedToken("revoked", 0, Long.MAX_VALUE);
        Thread leader = new Thread(() -> {
            try {
                real.get(KEY, plain, WAIT_MS);
            } catch (SQLException e) {
                throw new AssertionError(e);
            }
        });
        leader.start();
        assertTrue(entered.await(5, TimeUnit.SECONDS));
        AtomicReference<Object> got = new AtomicReference<>();
        Thread refusedTask = new Thread(() -> {
            try {
                got.set(real.get(KEY, renew, refused, WAIT_MS).value());
            } catch (SQLException e) {
                got.set(e);
            }
        });
        refusedTask.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (refusedTask.getState() != Thread.State.TIMED_WAITING && System.nanoTime() < deadline) {
            Thread.sleep(5); // until it has joined the plain flight
        }
        assertEquals(Thread.State.TIMED_WAITING, refusedTask.getState());
        release.countDown();
        refusedTask.join(5_000);
        leader.join(5_000);
        assertEquals("renewed", got.get());
        assertEquals(1, renewCalls.get());
    }

    @Test
    public void aCallerJoiningAHungFlightWaitsOnlyItsOwnBudget() throws Exception {
        TokenCache real = new TokenCache(System::nanoTime, Runnable::run, () -> 0.5);
        CountDownLatch never = new CountDownLatch(1);
        Thread leader = new Thread(() -> {
            try {
                real.get(KEY, () -> {
                    try {
                        never.await();
                    } catch (InterruptedException e) {
                        throw new SQLException(e);
                    }
                    return token("late");
                }, WAIT_MS);
            } catch (Exception e) {
                // interrupted at the end of the test
            }
        });
        leader.start();
        Thread.sleep(100);
        long started = System.nanoTime();
        try {
            real.get(KEY, () -> token("unused"), 300);
            fail("the joiner must give up");
        } catch (SQLException e) {
            long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
            assertTrue("waited " + tookMs + " ms", tookMs >= 250 && tookMs < 3_000);
            assertTrue(e.getMessage(), e.getMessage().contains("no token from the broker"));
        } finally {
            leader.interrupt();
        }
    }

    private static LakebaseException.Refused refusal() {
        return new LakebaseException.Refused("lakebase: To fix: grant the principal CAN USE (the token broker at "
                + "http://127.0.0.1:1 answered HTTP 403)", null);
    }

    /** A refusal is not an outage: the stale token is dropped, and callers fail at once without a broker call. */
    @Test
    public void aRefusedBackgroundRefreshDropsTheStaleTokenAndFailsEveryCallerAtOnce() throws SQLException {
        AtomicInteger calls = new AtomicInteger();
        TokenCache.Fetcher refusing = () -> {
            calls.incrementAndGet();
            throw refusal();
        };
        CachedToken first = cache.get(KEY, () -> token("t1"), WAIT_MS);
        advanceMs(2_000);
        assertSame("stale: served while the background call runs", first, cache.get(KEY, refusing, WAIT_MS));
        background.remove(0).run(); // the broker answers 403
        for (int i = 0; i < 5; i++) {
            try {
                cache.get(KEY, refusing, WAIT_MS);
                fail("a refused token must not be served stale");
            } catch (LakebaseException.Refused e) {
                assertTrue(e.getMessage(), e.getMessage().startsWith("lakebase: To fix: grant"));
                assertEquals("08004", e.getSQLState());
            }
        }
        assertEquals("the refusal is held: one broker call, however many callers", 1, calls.get());
        assertTrue(background.isEmpty());
        advanceMs(TokenCache.REFUSAL_HOLD_MS);
        assertEquals("after the hold the broker is asked again (a grant takes effect)", "t2",
                cache.get(KEY, () -> {
                    calls.incrementAndGet();
                    return token("t2");
                }, WAIT_MS).value());
        assertEquals(2, calls.get());
    }

    @Test
    public void aRefusalOfABlockingCallIsHeldToo() throws SQLException {
        AtomicInteger calls = new AtomicInteger();
        TokenCache.Fetcher refusing = () -> {
            calls.incrementAndGet();
            throw refusal();
        };
        for (int i = 0; i < 3; i++) {
            try {
                cache.get(KEY, refusing, WAIT_MS);
                fail("refused");
            } catch (LakebaseException.Refused e) {
                assertTrue(e.getMessage().contains("CAN USE"));
            }
        }
        assertEquals(1, calls.get());
    }

    /** The login margin is the broker's: 30 s, or the last tenth of a short token's life. */
    @Test
    public void aShortTokenIsServedStaleUntilItsLastTenth() throws SQLException {
        AtomicInteger calls = new AtomicInteger();
        TokenCache.Fetcher fetcher = () -> new BrokerToken("s" + calls.incrementAndGet(), 2_000, 1_000);
        CachedToken first = cache.get(KEY, fetcher, WAIT_MS);
        advanceMs(1_700); // stale, 0.3 s left: more than a tenth of its 2 s life
        assertSame(first, cache.get(KEY, fetcher, WAIT_MS));
        assertEquals(1, background.size());
        background.remove(0).run(); // s2, fetched now, 2 s to live
        advanceMs(1_850); // 0.15 s left: inside the margin, the caller waits for a broker call
        assertEquals("s3", cache.get(KEY, fetcher, WAIT_MS).value());
        assertTrue(background.isEmpty());
        assertEquals(60_000L, TimeUnit.NANOSECONDS.toMillis(new CachedToken("x", 0, 1).loginMarginNanos(
                TimeUnit.SECONDS.toNanos(60), TokenCache.MAX_LOGIN_MARGIN_SHARE)));
    }
}
