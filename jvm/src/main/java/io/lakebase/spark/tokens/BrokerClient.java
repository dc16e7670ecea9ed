package io.lakebase.spark.tokens;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.Log;
import io.lakebase.spark.core.ProviderStats;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.net.UnknownHostException;
import java.security.GeneralSecurityException;
import java.sql.SQLException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLSocketFactory;

/**
 * Asks the token broker in the driver's Python process for a database token.
 *
 * <p>Protocol: {@code GET <broker>/v1/token?endpoint=<name>} (or {@code ?instance=<name>}) with
 * {@code Authorization: Bearer <secret>}; a 200 answer is
 * {@code {"token": "...", "expires_in_ms": 3599000, "refresh_in_ms": 2999000}}, any other status
 * {@code {"error": "..."}}. Lifetimes are relative so the JVM's clock need not agree with the driver's.
 * Over https the broker's certificate must match the pinned fingerprint.
 */
public final class BrokerClient {

    /** The option that pins the broker's certificate (the connection options' key, named in errors here). */
    public static final String FINGERPRINT_OPTION = "lakebase.broker.fingerprint";

    // The protocol with the broker (Python's serving/_http.py; checked against it by tests/test_contract.py).
    static final String TOKEN_PATH = "/v1/token";
    static final String TOKEN = "token";
    static final String EXPIRES_IN_MS = "expires_in_ms";
    static final String REFRESH_IN_MS = "refresh_in_ms";
    static final String ERROR = "error";
    static final String REFUSED = "refused";

    public static final int CONNECT_TIMEOUT_MS = 10_000;
    static final long FIRST_RETRY_DELAY_MS = 100;
    static final long MAX_RETRY_DELAY_MS = 2_000;
    /** How long failed connections to the broker are retried (5xx answers: the whole broker timeout). */
    static final long TRANSPORT_RETRY_MS = 10_000;
    // Minting a credential can take a while (workspace API retries); the broker answers when it has one.
    public static final int READ_TIMEOUT_MS = 60_000;
    private static final int MAX_BODY_BYTES = 64 * 1024;
    private static final int MAX_ERROR_CHARS = 500;
    // SQLSTATE 08001: the client could not establish the connection (it never reached the database).
    private static final String SQLSTATE = "08001";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String brokerUrl;
    private final boolean https;
    private final String host;
    private final int port;
    private final String hostHeader;
    private final String path;
    private final String secret;
    private final byte[] fingerprint;
    private final int timeoutMs;

    /** A failure worth another attempt: the broker was busy (5xx) or its connection failed (transport). */
    private static final class Transient extends Exception {
        private static final long serialVersionUID = 1L;
        final SQLException error;
        final boolean transport;

        Transient(SQLException error, boolean transport) {
            super(null, null, false, false);
            this.error = error;
            this.transport = transport;
        }
    }

    /**
     * A client for {@code brokerUrl}; {@code fingerprint} is required for https and ignored for http.
     * {@code timeoutMs} bounds a whole {@link #fetch}, retries included.
     */
    public BrokerClient(String brokerUrl, String secret, byte[] fingerprint, int timeoutMs) {
        URI uri = URI.create(brokerUrl); // already validated by the connection options
        this.brokerUrl = brokerUrl;
        this.https = "https".equals(uri.getScheme());
        this.host = uri.getHost();
        this.port = uri.getPort() >= 0 ? uri.getPort() : https ? 443 : 80;
        this.hostHeader = host + (uri.getPort() >= 0 ? ":" + uri.getPort() : "");
        this.path = uri.getRawPath() == null ? "" : uri.getRawPath();
        this.secret = secret;
        this.fingerprint = fingerprint;
        this.timeoutMs = timeoutMs;
    }

    /** One token request; every failure is an SQLException whose message says what to fix and holds no secret. */
    public BrokerToken fetch(LakebaseTarget target) throws SQLException {
        return fetch(target, null);
    }

    /**
     * A token request after the database refused {@code refused}: the broker mints a new token if its current one
     * is that token (identified by {@link #digest}, never sent itself), else serves the one another JVM already
     * caused it to mint, so N executors seeing one revoked token cause one mint, not N.
     */
    public BrokerToken fetch(LakebaseTarget target, CachedToken refused) throws SQLException {
        ProviderStats.BROKER_FETCHES.incrementAndGet();
        String query = target.brokerQuery() + (refused == null ? "" : "&" + REFUSED + "=" + digest(refused.value())) + "&"
                + ProviderStats.brokerQuery();
        // Refused, reset and timed-out connects and 5xx answers are retried with jittered backoff (when a stage starts,
        // a thousand executors connect at once), inside the one budget; 401 and other 4xx answers fail at once.
        // Connection failures get a shorter window: a herd's overflow clears in seconds, while a broker that is gone
        // (its Spark session stopped) is not coming back, and the task should say so soon.
        long started = System.nanoTime();
        long deadline = started + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        long transportDeadline = started + TimeUnit.MILLISECONDS.toNanos(Math.min(timeoutMs, TRANSPORT_RETRY_MS));
        long delayMs = FIRST_RETRY_DELAY_MS;
        for (int attempt = 1; ; attempt++) {
            long remainingMs = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            try {
                return fetchOnce(target, query, (int) Math.max(remainingMs, 1));
            } catch (Transient t) {
                long sleepMs = delayMs / 2 + (long) (ThreadLocalRandom.current().nextDouble() * (delayMs - delayMs / 2));
                remainingMs = TimeUnit.NANOSECONDS.toMillis((t.transport ? transportDeadline : deadline)
                        - System.nanoTime());
                if (remainingMs <= sleepMs) {
                    throw attempt == 1 ? t.error : fail(t.error.getMessage() + " (" + attempt + " attempts in "
                            + TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started) + " ms)", t.error);
                }
                ProviderStats.BROKER_RETRIES.incrementAndGet();
                Log.fine("token broker at %s: %s; retrying in %d ms", brokerUrl, t.error.getMessage(), sleepMs);
                try {
                    Thread.sleep(sleepMs);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    t.error.addSuppressed(e);
                    throw t.error;
                }
                delayMs = Math.min(delayMs * 2, MAX_RETRY_DELAY_MS);
            }
        }
    }

    private BrokerToken fetchOnce(LakebaseTarget target, String query, int budgetMs) throws SQLException, Transient {
        Socket socket = connect(Math.min(CONNECT_TIMEOUT_MS, budgetMs), budgetMs);
        HttpGet.Response answer;
        try {
            answer = HttpGet.exchange(socket, hostHeader, path + TOKEN_PATH + "?" + query,
                    new String[] {"Accept: application/json", "Authorization: Bearer " + secret}, MAX_BODY_BYTES);
        } catch (SocketTimeoutException e) {
            throw fail("the token broker at " + brokerUrl + " did not answer within " + seconds(timeoutMs)
                    + " for " + target + "; it may still be minting a credential (is the workspace API slow or "
                    + "failing?): see the driver's log", e);
        } catch (IOException e) {
            // Reset mid-answer (an overloaded or restarting broker): worth another attempt.
            throw new Transient(fail("the answer of the token broker at " + brokerUrl + " for " + target
                    + " could not be read (" + e + "); is something other than the broker listening there?", e), true);
        }
        if (answer.status == 200) {
            BrokerToken token = parseToken(answer.body);
            Log.fine("broker %s served a token for %s (refresh in %d ms, expires in %d ms)",
                    brokerUrl, target, token.refreshInMs, token.expiresInMs);
            return token;
        }
        SQLException error = statusError(answer.status, errorMessage(answer.body), target);
        if (answer.status >= 500) {
            throw new Transient(error, false);
        }
        throw error;
    }

    /**
     * One {@code POST} of a JSON document to {@code route} (under the broker's URL) and its 200 answer; used by the
     * catalog to have the driver's Python plan and finish a write. Not retried: the caller decides what a repeat
     * means. Any other answer fails with the broker's own message (written to be safe to show).
     */
    public JsonNode post(String route, Object document, int readTimeoutMs) throws SQLException {
        byte[] body;
        try {
            body = JSON.writeValueAsBytes(document);
        } catch (IOException e) {
            throw fail("cannot encode a request to the token broker: " + e.getMessage(), e);
        }
        HttpGet.Response answer;
        try {
            Socket socket = connect(CONNECT_TIMEOUT_MS, readTimeoutMs);
            answer = HttpGet.exchange(socket, hostHeader, path + route,
                    new String[] {"Accept: application/json", "Authorization: Bearer " + secret}, body, MAX_BODY_BYTES);
        } catch (Transient t) {
            throw t.error;
        } catch (SocketTimeoutException e) {
            throw fail("the broker at " + brokerUrl + " did not answer " + route + " within " + seconds(readTimeoutMs),
                    e);
        } catch (IOException e) {
            throw fail(unreachable(e.getClass().getSimpleName() + ": " + e.getMessage()), e);
        }
        String error = answer.status == 200 ? null : errorMessage(answer.body);
        if (answer.status == 401) {
            throw statusError(401, error, null);
        }
        if (answer.status != 200) {
            throw fail(error != null ? error : "the broker at " + brokerUrl + " answered HTTP " + answer.status
                    + " to " + route + " (no error message)", null);
        }
        try {
            return JSON.readTree(answer.body);
        } catch (IOException e) {
            throw fail("the broker at " + brokerUrl + " answered " + route + " with something that is not JSON", null);
        }
    }

    /** First 16 bytes of SHA-256 of a token, hex: names a token to the broker without revealing it. */
    static String digest(String token) {
        return Digests.hex(Digests.sha256(token), 16);
    }

    private Socket connect(int connectTimeoutMs, int readTimeoutMs) throws SQLException, Transient {
        SSLSocketFactory tls = null;
        if (https) {
            try {
                tls = PinnedTrustManager.socketFactory(fingerprint);
            } catch (GeneralSecurityException e) {
                throw fail("cannot set up TLS for the token broker at " + brokerUrl + ": " + e, e);
            }
        }
        try {
            return HttpGet.open(host, port, tls, connectTimeoutMs, readTimeoutMs);
        } catch (SSLException e) {
            PinnedTrustManager.PinMismatchException pin = findPinMismatch(e);
            if (pin != null) {
                throw fail("the TLS certificate of the token broker at " + brokerUrl + " does not match "
                        + FINGERPRINT_OPTION + ": " + pin.getMessage() + "; the options belong to "
                        + "another broker, or something else answers at that address: " + rebuild(), e);
            }
            // A handshake cut short by an overloaded server; a broken TLS setup fails the same way every time.
            throw new Transient(fail("TLS with the token broker at " + brokerUrl + " failed (" + e.getMessage() + ")", e),
                    true);
        } catch (SocketTimeoutException e) {
            throw new Transient(fail(unreachable("no connection within " + seconds(connectTimeoutMs)), e), true);
        } catch (UnknownHostException e) {
            throw fail(unreachable(e.getClass().getSimpleName() + ": " + e.getMessage()), e);
        } catch (IOException e) {
            // Connection refused (a full backlog, a restarting driver), no route, reset during the handshake.
            throw new Transient(fail(unreachable(e.getClass().getSimpleName() + ": " + e.getMessage()), e), true);
        }
    }

    private BrokerToken parseToken(byte[] body) throws SQLException {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (IOException e) {
            // Not e's message: parser messages quote the input, which may hold the token.
            throw fail("the token broker at " + brokerUrl + " sent a 200 answer that is not JSON", null);
        }
        JsonNode token = root == null ? null : root.get(TOKEN);
        JsonNode expires = root == null ? null : root.get(EXPIRES_IN_MS);
        JsonNode refresh = root == null ? null : root.get(REFRESH_IN_MS);
        if (token == null || !token.isTextual() || token.asText().isEmpty()
                || expires == null || !expires.canConvertToLong() || expires.asLong() <= 0) {
            throw fail("the token broker at " + brokerUrl + " sent a 200 answer without a token and a positive "
                    + EXPIRES_IN_MS + "; is the broker the same version as this jar?", null);
        }
        long expiresInMs = expires.asLong();
        // Without advice, refresh at four fifths of the lifetime, as the broker itself would.
        long refreshInMs = refresh != null && refresh.canConvertToLong()
                ? Math.max(0L, refresh.asLong()) : expiresInMs / 5 * 4;
        return new BrokerToken(token.asText(), expiresInMs, refreshInMs);
    }

    private SQLException statusError(int status, String error, LakebaseTarget target) {
        if (status == 401) {
            return new LakebaseException.Refused("lakebase: the token broker at " + brokerUrl + " rejected the broker "
                    + "secret (HTTP 401); options were built for another broker or the broker restarted: " + rebuild(),
                    null);
        }
        String where = "the token broker at " + brokerUrl + " answered HTTP " + status + " for " + target;
        if (status >= 400 && status < 500) {
            // The workspace refused (the broker relays its 403/404/400): the broker's message starts with the fix.
            return new LakebaseException.Refused("lakebase: " + (error != null ? error + " (" + where + ")"
                    : where + " (no error message)"), null);
        }
        return fail(where + (error != null ? ": " + error : " (no error message)"), null);
    }

    /** The broker's {@code {"error": "..."}} message (written to be safe to show), or null. */
    private static String errorMessage(byte[] body) {
        try {
            JsonNode root = JSON.readTree(body);
            JsonNode error = root == null ? null : root.get(ERROR);
            if (error == null || !error.isTextual()) {
                return null;
            }
            String text = error.asText();
            return text.length() > MAX_ERROR_CHARS ? text.substring(0, MAX_ERROR_CHARS) + "..." : text;
        } catch (IOException | RuntimeException e) {
            // Not JSON (a proxy page, a different server): report the status alone rather than echo the body.
            return null;
        }
    }

    private String unreachable(String why) {
        return "the token broker at " + brokerUrl + " is unreachable (" + why + "); it runs in the Spark driver's "
                + "Python process, so the session that built these options must still be running, and this host "
                + "must reach the driver at that address: " + rebuild() + " in the current session";
    }

    private static String seconds(int ms) {
        return ms % 1000 == 0 ? ms / 1000 + " s" : ms + " ms";
    }

    private static String rebuild() {
        return "rebuild the options with lakebase_spark.lakebase_options(...)";
    }

    private static PinnedTrustManager.PinMismatchException findPinMismatch(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof PinnedTrustManager.PinMismatchException) {
                return (PinnedTrustManager.PinMismatchException) t;
            }
        }
        return null;
    }

    private static SQLException fail(String message, Throwable cause) {
        return new LakebaseException.Sql(message.startsWith("lakebase: ") ? message : "lakebase: " + message, SQLSTATE,
                cause);
    }

    @Override
    public String toString() {
        return "BrokerClient(" + brokerUrl + ", secret=***)";
    }
}
