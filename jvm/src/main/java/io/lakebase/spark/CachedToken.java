package io.lakebase.spark;

/** A token held by this JVM, with refresh and expiry deadlines on the {@code System.nanoTime} clock. */
final class CachedToken {

    private final String value;
    private final long refreshAtNanos;
    private final long expiresAtNanos;

    CachedToken(String value, long refreshAtNanos, long expiresAtNanos) {
        this.value = value;
        this.refreshAtNanos = refreshAtNanos;
        this.expiresAtNanos = expiresAtNanos;
    }

    /**
     * Anchors the broker's relative lifetimes at {@code requestedAtNanos}, taken before the request was sent, so
     * network time only makes the deadlines earlier and driver/executor clock skew never enters.
     */
    static CachedToken from(BrokerToken token, long requestedAtNanos) {
        return new CachedToken(token.value(),
                requestedAtNanos + token.refreshInMs * 1_000_000L,
                requestedAtNanos + token.expiresInMs * 1_000_000L);
    }

    /** The token itself: pass it to the driver, never to a log or message. */
    String value() {
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
