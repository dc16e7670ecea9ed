package io.lakebase.spark.connection;

import io.lakebase.spark.core.LakebaseException;
import java.net.InetAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnknownHostException;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The broker's URL option, checked: http only to a loopback literal, https (with a pinned certificate) elsewhere,
 * no user info, query or fragment. Messages never echo a credential.
 */
final class BrokerUrls {

    private static final Pattern IPV4 = Pattern.compile("(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})");

    private BrokerUrls() {}

    /** The normalised broker base URL (scheme and host lower-case, no trailing slash), or a clear refusal. */
    static String parse(String raw) {
        URI uri;
        try {
            uri = new URI(raw.trim());
        } catch (URISyntaxException e) {
            throw badBrokerUrl(raw, "it does not parse (" + e.getReason() + ")");
        }
        if (uri.getRawUserInfo() != null) {
            // Do not echo the value: user info may hold a credential.
            throw new LakebaseException.Options("lakebase: " + LakebaseOptions.BROKER_URL + " must not contain user info: "
                    + "the broker secret belongs in " + LakebaseOptions.BROKER_SECRET + "; " + LakebaseOptions.REBUILD);
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        if (!scheme.equals("http") && !scheme.equals("https")) {
            throw badBrokerUrl(raw, "the scheme must be http or https");
        }
        String host = uri.getHost();
        if (host == null || host.isEmpty()) {
            throw badBrokerUrl(raw, "it has no host");
        }
        if (uri.getRawQuery() != null || uri.getRawFragment() != null) {
            throw badBrokerUrl(raw, "it must not have a query or fragment");
        }
        host = host.toLowerCase(Locale.ROOT);
        if (scheme.equals("http") && !isLoopback(host)) {
            throw new LakebaseException.Options("lakebase: " + LakebaseOptions.BROKER_URL + "='" + raw + "' is plain http to a "
                    + "non-loopback host: off loopback the broker must use https with " + LakebaseOptions.BROKER_FINGERPRINT
                    + " (TLS with a pinned certificate) so tokens never cross the network in clear; " + LakebaseOptions.REBUILD);
        }
        String path = uri.getRawPath() == null ? "" : uri.getRawPath();
        while (path.endsWith("/")) {
            path = path.substring(0, path.length() - 1);
        }
        return scheme + "://" + host + (uri.getPort() >= 0 ? ":" + uri.getPort() : "") + path;
    }

    private static LakebaseException.Options badBrokerUrl(String raw, String why) {
        // An unparsable URL may still carry user:password@ (not checked yet): mask it before echoing.
        String shown = raw.replaceFirst("//[^/@]*@", "//***@");
        return new LakebaseException.Options("lakebase: " + LakebaseOptions.BROKER_URL + "='" + shown + "' is not a valid broker URL: "
                + why + " (expected http://127.0.0.1:<port> or https://<driver-host>:<port>); " + LakebaseOptions.REBUILD);
    }

    /** Loopback by literal only (localhost, 127.0.0.0/8, ::1): resolving names here would trust DNS. */
    static boolean isLoopback(String host) {
        if (host.equals("localhost")) {
            return true;
        }
        Matcher m = IPV4.matcher(host);
        if (m.matches()) {
            for (int i = 1; i <= 4; i++) {
                if (Integer.parseInt(m.group(i)) > 255) {
                    return false;
                }
            }
            return Integer.parseInt(m.group(1)) == 127;
        }
        if (host.startsWith("[") && host.endsWith("]")) {
            try {
                // An IPv6 literal: InetAddress parses it without a DNS lookup.
                return InetAddress.getByName(host.substring(1, host.length() - 1)).isLoopbackAddress();
            } catch (UnknownHostException e) {
                return false;
            }
        }
        return false;
    }
}
