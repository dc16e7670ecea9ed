package io.lakebase.spark;

import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;

/**
 * Per-JVM token cache: serves a token until the broker's refresh point, then asks the broker again, once per key
 * however many tasks need it at that moment (single-flight; the others wait for that answer).
 */
final class TokenCache {

    /** One broker call; the cache anchors the answer's relative lifetimes on its own clock. */
    interface Fetcher {
        BrokerToken fetch() throws SQLException;
    }

    /** A token and whether it came from the cache (an auth failure is then worth one retry with a new token). */
    static final class Lookup {
        final CachedToken token;
        final boolean fromCache;

        Lookup(CachedToken token, boolean fromCache) {
            this.token = token;
            this.fromCache = fromCache;
        }
    }

    // A token this close to expiry is not worth a login attempt when a refresh has failed.
    private static final long LOGIN_MARGIN_NANOS = TimeUnit.SECONDS.toNanos(30);

    private static final TokenCache SHARED = new TokenCache(System::nanoTime);

    private final LongSupplier nanoClock;
    private final ConcurrentHashMap<TokenKey, Slot> slots = new ConcurrentHashMap<>();

    /** State for one key; both fields are guarded by the slot's monitor. */
    private static final class Slot {
        CachedToken token;
        CompletableFuture<CachedToken> inFlight;
    }

    TokenCache(LongSupplier nanoClock) {
        this.nanoClock = nanoClock;
    }

    /** The cache shared by every provider instance in this JVM. */
    static TokenCache shared() {
        return SHARED;
    }

    /**
     * A fresh token for {@code key}: the cached one before its refresh point, else one broker call shared by all
     * concurrent callers. If that call fails while the previous token is still well short of expiry, the previous
     * token is served: a busy or restarting broker should not fail logins that can still succeed.
     */
    Lookup get(TokenKey key, Fetcher fetcher) throws SQLException {
        Slot slot = slots.computeIfAbsent(key, k -> new Slot());
        CachedToken previous;
        CompletableFuture<CachedToken> flight;
        boolean leader = false;
        synchronized (slot) {
            previous = slot.token;
            if (previous != null && previous.isFresh(nanoClock.getAsLong())) {
                return new Lookup(previous, true);
            }
            flight = slot.inFlight;
            if (flight == null) {
                flight = new CompletableFuture<>();
                slot.inFlight = flight;
                leader = true;
            }
        }
        if (leader) {
            fly(slot, flight, fetcher);
        }
        try {
            return new Lookup(await(flight, leader), false);
        } catch (SQLException e) {
            synchronized (slot) {
                if (previous != null && slot.token == previous
                        && previous.isUsable(nanoClock.getAsLong() + LOGIN_MARGIN_NANOS)) {
                    Log.fine("broker refresh for %s failed (%s); serving the cached token until it nears expiry",
                            key, e.getMessage());
                    return new Lookup(previous, true);
                }
            }
            throw e;
        }
    }

    /** Drops {@code stale} for {@code key}, unless another thread has already replaced it. */
    void invalidate(TokenKey key, CachedToken stale) {
        Slot slot = slots.get(key);
        if (slot == null) {
            return;
        }
        synchronized (slot) {
            if (slot.token == stale) {
                slot.token = null;
            }
        }
    }

    private void fly(Slot slot, CompletableFuture<CachedToken> flight, Fetcher fetcher) {
        long requestedAt = nanoClock.getAsLong();
        try {
            CachedToken token = CachedToken.from(fetcher.fetch(), requestedAt);
            synchronized (slot) {
                slot.token = token;
                slot.inFlight = null;
            }
            flight.complete(token);
        } catch (Throwable t) {
            // Whatever happened, complete the flight: waiting threads must not hang on it.
            synchronized (slot) {
                slot.inFlight = null;
            }
            flight.completeExceptionally(t);
        }
    }

    private static CachedToken await(CompletableFuture<CachedToken> flight, boolean leader) throws SQLException {
        try {
            return flight.get();
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
