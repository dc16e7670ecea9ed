package io.lakebase.spark.tokens;

/** A token held by this JVM, with refresh and expiry deadlines on the {@code System.nanoTime} clock. */
public final class CachedToken {

    private final String value;
    private final long refreshAtNanos;
    private final long expiresAtNanos;
    /** Its life left when the broker served it (a fresh token: its lifetime), which bounds the login margin. */
    private final long lifetimeNanos;

    CachedToken(String value, long refreshAtNanos, long expiresAtNanos) {
        this(value, refreshAtNanos, expiresAtNanos, Long.MAX_VALUE);
    }

    private CachedToken(String value, long refreshAtNanos, long expiresAtNanos, long lifetimeNanos) {
        this.value = value;
        this.refreshAtNanos = refreshAtNanos;
        this.expiresAtNanos = expiresAtNanos;
        this.lifetimeNanos = lifetimeNanos;
    }

    /**
     * Anchors the broker's relative lifetimes at {@code requestedAtNanos}, taken before the request was sent, so
     * network time only makes the deadlines earlier and driver/executor clock skew never enters.
     */
    static CachedToken from(BrokerToken token, long requestedAtNanos) {
        return new CachedToken(token.value(),
                requestedAtNanos + token.refreshInMs * 1_000_000L,
                requestedAtNanos + token.expiresInMs * 1_000_000L,
                token.expiresInMs * 1_000_000L);
    }

    /**
     * The time before expiry in which this token is no longer handed to a login: {@code maxNanos}, or
     * {@code share} of its lifetime if less (the broker's rule: 30 s, or the last tenth of a short token's life).
     */
    long loginMarginNanos(long maxNanos, double share) {
        return lifetimeNanos == Long.MAX_VALUE ? maxNanos : Math.min(maxNanos, (long) (lifetimeNanos * share));
    }

    /** The token itself: pass it to the driver, never to a log or message. */
    public String value() {
        return value;
    }

    /** True before the refresh deadline: serve it without asking the broker. */
    boolean isFresh(long nowNanos) {
        return nowNanos - refreshAtNanos < 0; // difference, not comparison: nanoTime may wrap
    }

    /** True before expiry: still usable for a login if a refresh fails. */
    boolean isUsable(long nowNanos) {
        return nowNanos - expiresAtNanos < 0;
    }

    @Override
    public String toString() {
        return "CachedToken(***)";
    }
}
