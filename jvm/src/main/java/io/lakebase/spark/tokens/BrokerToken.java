package io.lakebase.spark.tokens;

/** A token as the broker hands it out, with lifetimes relative to the moment it answered. */
public final class BrokerToken {

    private final String value;
    /** How long the database will accept the token for new logins. */
    final long expiresInMs;
    /** When the broker advises asking again; never later than {@link #expiresInMs}. */
    final long refreshInMs;

    BrokerToken(String value, long expiresInMs, long refreshInMs) {
        this.value = value;
        this.expiresInMs = expiresInMs;
        this.refreshInMs = Math.min(refreshInMs, expiresInMs);
    }

    /** The token itself: pass it to the driver, never to a log or message. */
    String value() {
        return value;
    }

    @Override
    public String toString() {
        return "BrokerToken(***, expires in " + expiresInMs + " ms, refresh in " + refreshInMs + " ms)";
    }
}
