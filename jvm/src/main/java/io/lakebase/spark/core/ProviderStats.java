package io.lakebase.spark.core;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicLong;

/**
 * This JVM's provider counters. Python reads the driver's through py4j ({@link #snapshot()}); executors report
 * theirs to the broker with each token request, so the driver sees them as of each JVM's last broker call.
 */
public final class ProviderStats {

    /** Names this JVM in reports to the broker; random, so it reveals nothing about the host. */
    static final String JVM_ID = UUID.randomUUID().toString();
    /** The query parameter that carries {@link #JVM_ID} (Python's service.JVM). */
    static final String JVM = "jvm";

    public static final AtomicLong LOGINS = new AtomicLong();
    public static final AtomicLong BROKER_FETCHES = new AtomicLong();
    public static final AtomicLong AUTH_RETRIES = new AtomicLong();
    public static final AtomicLong COLD_START_RETRIES = new AtomicLong();
    public static final AtomicLong CONNECTION_LIMIT_RETRIES = new AtomicLong();
    public static final AtomicLong BROKER_RETRIES = new AtomicLong();

    private ProviderStats() {}

    /** Counters since this JVM loaded the provider; the names are Python's {@code service.JVM_COUNTERS}. */
    public static Map<String, Long> snapshot() {
        Map<String, Long> out = new LinkedHashMap<>();
        out.put("logins", LOGINS.get());
        out.put("broker_fetches", BROKER_FETCHES.get());
        out.put("auth_retries", AUTH_RETRIES.get());
        out.put("cold_start_retries", COLD_START_RETRIES.get());
        out.put("connection_limit_retries", CONNECTION_LIMIT_RETRIES.get());
        out.put("broker_retries", BROKER_RETRIES.get());
        return out;
    }

    /** The report appended to broker requests (counters only; no host, user or token). */
    public static String brokerQuery() {
        StringBuilder query = new StringBuilder(JVM).append('=').append(JVM_ID);
        for (Map.Entry<String, Long> e : snapshot().entrySet()) {
            query.append('&').append(e.getKey()).append('=').append(e.getValue());
        }
        return query.toString();
    }
}
