package io.lakebase.spark.connection;

import java.io.UnsupportedEncodingException;
import java.net.URLDecoder;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/** The parts of a {@code jdbc:postgresql:} URL the provider checks: its query parameters and its host. */
final class PgUrl {

    static final String PREFIX = "jdbc:postgresql:";

    private final String url;
    // Keys as written: pgjdbc matches URL parameter names case-sensitively.
    private final Map<String, String> params;

    private PgUrl(String url, Map<String, String> params) {
        this.url = url;
        this.params = params;
    }

    /** Parses the query string the way pgjdbc does: raw keys, URL-decoded values, a bare key means "". */
    static PgUrl parse(String url) {
        Map<String, String> params = new LinkedHashMap<>();
        int q = url.indexOf('?');
        if (q >= 0) {
            for (String token : url.substring(q + 1).split("&")) {
                if (token.isEmpty()) {
                    continue;
                }
                int eq = token.indexOf('=');
                if (eq < 0) {
                    params.put(token, "");
                } else {
                    params.put(token.substring(0, eq), decode(token.substring(eq + 1)));
                }
            }
        }
        return new PgUrl(url, params);
    }

    /** The database the URL names ({@code jdbc:postgresql://host:port/DATABASE?...}), decoded; null if none. */
    String database() {
        int start = url.indexOf("//");
        int slash = start < 0 ? -1 : url.indexOf('/', start + 2);
        if (slash < 0) {
            return null;
        }
        int q = url.indexOf('?', slash);
        String name = decode(q < 0 ? url.substring(slash + 1) : url.substring(slash + 1, q));
        return name.isEmpty() ? null : name;
    }

    private static String decode(String value) {
        try {
            return URLDecoder.decode(value, "UTF-8");
        } catch (UnsupportedEncodingException e) {
            throw new AssertionError("UTF-8 is always supported", e);
        } catch (IllegalArgumentException e) {
            return value; // a stray '%': keep the raw text so validation still sees it
        }
    }

    /**
     * The value of a query parameter whose name matches case-insensitively, or null.
     *
     * <p>Case-insensitive on purpose: for the security checks a near miss such as {@code sslMode=disable} is treated
     * as meant, even though pgjdbc itself would ignore it.
     */
    String param(String name) {
        for (Map.Entry<String, String> e : params.entrySet()) {
            if (e.getKey().equalsIgnoreCase(name)) {
                return e.getValue();
            }
        }
        return null;
    }

    /** The exact-case value pgjdbc would read, or null. */
    String exactParam(String name) {
        return params.get(name);
    }

    /** {@code host:port} (or the host list) for messages; no query string, so nothing sensitive. */
    String hosts() {
        String rest = url.regionMatches(true, 0, PREFIX, 0, PREFIX.length()) ? url.substring(PREFIX.length()) : url;
        if (!rest.startsWith("//")) {
            return "localhost:5432";
        }
        rest = rest.substring(2);
        int end = rest.length();
        for (char c : new char[] {'/', '?'}) {
            int i = rest.indexOf(c);
            if (i >= 0 && i < end) {
                end = i;
            }
        }
        String hosts = rest.substring(0, end);
        return hosts.isEmpty() ? "localhost:5432" : hosts.toLowerCase(Locale.ROOT);
    }
}
