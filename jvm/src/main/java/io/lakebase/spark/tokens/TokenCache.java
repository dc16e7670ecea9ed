package io.lakebase.spark.tokens;

import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.Log;
import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;

/**
 * Per-JVM token cache, with the broker's own rule (databricks-sdk's {@code Refreshable}):
 * <ul>
 *   <li><b>fresh</b> (before the broker's refresh point): served from the cache;</li>
 *   <li><b>stale</b> (after it, but not within {@link #LOGIN_MARGIN_NANOS} of expiry): served at once, while one
 *       background call asks the broker for the next token; a failed call backs off (jittered) before the next;</li>
 *   <li><b>expired</b> (or none yet): the caller waits for one broker call shared by every concurrent caller
 *       (single flight), at most the given time.</li>
 * </ul>
 * A token the database refused is never served again, nor accepted from a broker call that was already in flight
 * when the refusal was seen. A refusal by the workspace ({@link LakebaseException.Refused}, HTTP 4xx from the broker)
 * is not an outage: the cached token is dropped rather than served stale, and every request fails with that refusal
 * for {@link #REFUSAL_HOLD_MS} without asking the broker again, so every task of every JVM fails at once.
 */
public final class TokenCache {

    /** One broker call; the cache anchors the answer's relative lifetimes on its own clock. */
    public interface Fetcher {
        BrokerToken fetch() throws SQLException;
    }

    /** A token this close to expiry is not handed to a login: the login needs time to happen. */
    static final long LOGIN_MARGIN_NANOS = TimeUnit.SECONDS.toNanos(30);
    /** ... or within a tenth of its lifetime, if shorter (the broker's LOGIN_MARGIN and MAX_LOGIN_MARGIN_SHARE). */
    static final double MAX_LOGIN_MARGIN_SHARE = 0.1;
    static final long FIRST_BACKOFF_MS = 1_000;
    static final long MAX_BACKOFF_MS = 60_000;
    /** How long a refusal is served without asking the broker again (the broker's REFUSAL_HOLD). */
    static final long REFUSAL_HOLD_MS = 10_000;

    private static final ExecutorService REFRESHER = Executors.newCachedThreadPool(runnable -> {
        Thread thread = new Thread(runnable, "lakebase-token-refresh");
        thread.setDaemon(true);
        return thread;
    });
    private static final TokenCache SHARED = new TokenCache(System::nanoTime, REFRESHER,
            () -> ThreadLocalRandom.current().nextDouble());

    private final LongSupplier nanoClock;
    private final Executor refresher;
    /** Uniform in [0, 1): spreads the retries of many JVMs. */
    private final DoubleSupplier jitter;
    private final ConcurrentHashMap<TokenKey, Slot> slots = new ConcurrentHashMap<>();

    /** State for one key; every field is guarded by the slot's monitor. */
    private static final class Slot {
        CachedToken token;
        CompletableFuture<CachedToken> inFlight;
        /** No background refresh before this (set after a failed one). */
        long retryAtNanos;
        int failures;
        /** The workspace's last refusal, served until {@code refusedAtNanos + REFUSAL_HOLD_MS}. */
        LakebaseException.Refused refusal;
        long refusedAtNanos;
    }

    TokenCache(LongSupplier nanoClock, Executor refresher, DoubleSupplier jitter) {
        this.nanoClock = nanoClock;
        this.refresher = refresher;
        this.jitter = jitter;
    }

    /** The cache shared by every provider instance in this JVM. */
    public static TokenCache shared() {
        return SHARED;
    }

    /** A token for {@code key} by the rule above; waits at most {@code waitMs} for a broker call. */
    public CachedToken get(TokenKey key, Fetcher fetcher, long waitMs) throws SQLException {
        return get(key, fetcher, null, waitMs);
    }

    /**
     * As {@link #get(TokenKey, Fetcher, long)}, after the database refused {@code refused}: that token is dropped,
     * and if a broker call already in flight brings it back, {@code fetcher} (which tells the broker it was refused)
     * is called again.
     */
    public CachedToken get(TokenKey key, Fetcher fetcher, CachedToken refused, long waitMs) throws SQLException {
        Slot slot = slots.computeIfAbsent(key, k -> new Slot());
        long deadline = nanoClock.getAsLong() + TimeUnit.MILLISECONDS.toNanos(waitMs);
        for (int round = 0; ; round++) {
            CompletableFuture<CachedToken> flight;
            boolean leader = false;
            synchronized (slot) {
                if (refused != null && slot.token != null && slot.token.value().equals(refused.value())) {
                    slot.token = null;
                }
                CachedToken cached = slot.token;
                long now = nanoClock.getAsLong();
                if (slot.refusal != null && now - slot.refusedAtNanos < TimeUnit.MILLISECONDS.toNanos(REFUSAL_HOLD_MS)) {
                    throw new LakebaseException.Refused(slot.refusal.getMessage(), slot.refusal);
                }
                if (cached != null && cached.isFresh(now)) {
                    return cached;
                }
                if (cached != null && cached.isUsable(now + cached.loginMarginNanos(LOGIN_MARGIN_NANOS,
                        MAX_LOGIN_MARGIN_SHARE))) {
                    if (slot.inFlight == null && now - slot.retryAtNanos >= 0) {
                        CompletableFuture<CachedToken> background = new CompletableFuture<>();
                        slot.inFlight = background;
                        refresher.execute(() -> fly(slot, background, fetcher, key));
                    }
                    return cached; // stale: the next token is on its way
                }
                flight = slot.inFlight;
                if (flight == null) {
                    flight = new CompletableFuture<>();
                    slot.inFlight = flight;
                    leader = true;
                }
            }
            if (leader) {
                fly(slot, flight, fetcher, key);
            }
            CachedToken token = await(flight, leader, deadline, key);
            if (refused == null || !token.value().equals(refused.value())) {
                return token;
            }
            // A call that started before the refusal was known brought the refused token back: ask again, saying so.
            if (round > 0) {
                throw new LakebaseException.Sql("lakebase: the token broker served the token the database had just "
                        + "refused for " + key + " again; see the driver's log", "08001");
            }
        }
    }

    private void fly(Slot slot, CompletableFuture<CachedToken> flight, Fetcher fetcher, TokenKey key) {
        long requestedAt = nanoClock.getAsLong();
        try {
            CachedToken token = CachedToken.from(fetcher.fetch(), requestedAt);
            synchronized (slot) {
                slot.token = token;
                slot.inFlight = null;
                slot.failures = 0;
                slot.refusal = null;
            }
            flight.complete(token);
        } catch (LakebaseException.Refused refusal) {
            synchronized (slot) {
                slot.inFlight = null;
                slot.token = null; // not served stale: a refusal is not an outage
                slot.refusal = refusal;
                slot.refusedAtNanos = nanoClock.getAsLong();
                Log.fine("the broker refused a token for %s; every request fails with that for %d ms: %s", key,
                        REFUSAL_HOLD_MS, refusal.getMessage());
            }
            flight.completeExceptionally(refusal);
        } catch (Throwable t) {
            // Whatever happened, complete the flight: waiting threads must not hang on it.
            synchronized (slot) {
                slot.inFlight = null;
                slot.failures++;
                long backoffMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS << Math.min(slot.failures - 1, 16));
                backoffMs = backoffMs / 2 + (long) (jitter.getAsDouble() * (backoffMs - backoffMs / 2));
                slot.retryAtNanos = nanoClock.getAsLong() + TimeUnit.MILLISECONDS.toNanos(backoffMs);
                Log.fine("asking the broker for a token for %s failed (%d in a row; a stale token is served for "
                        + "another %d ms at least): %s", key, slot.failures, backoffMs, t.getMessage());
            }
            flight.completeExceptionally(t);
        }
    }

    private CachedToken await(CompletableFuture<CachedToken> flight, boolean leader, long deadline, TokenKey key)
            throws SQLException {
        try {
            // The leader's own call is bounded by the broker client's timeouts; joiners by the caller's budget.
            return leader ? flight.get() : flight.get(Math.max(deadline - nanoClock.getAsLong(), 0), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            throw new LakebaseException.Sql("lakebase: no token from the broker for " + key + " in time: another task's "
                    + "request to the broker is still waiting for an answer (is the workspace API slow or failing? see "
                    + "the driver's log)", "08001", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LakebaseException.Sql("lakebase: interrupted while waiting for a token from the broker", "08001", e);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof SQLException) {
                SQLException s = (SQLException) cause;
                // Waiters get their own exception (with this thread's stack) around the leader's.
                throw leader ? s : new LakebaseException.Sql(s.getMessage(), s.getSQLState(), s.getErrorCode(), s);
            }
            if (cause instanceof RuntimeException) {
                throw (RuntimeException) cause;
            }
            if (cause instanceof Error) {
                throw (Error) cause;
            }
            throw new LakebaseException.Sql("lakebase: token fetch failed", "08001", cause);
        }
    }
}
