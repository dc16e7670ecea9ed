package io.lakebase.spark.tokens;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

/**
 * A single HTTP/1.1 request over a plain or TLS socket, with {@code Connection: close}: a {@code GET} (a token), or a
 * {@code POST} with a JSON body (the catalog's write coordination, {@code BrokerClient.post}).
 *
 * <p>Not {@link java.net.HttpURLConnection}: that logs request headers, the {@code Authorization} header included,
 * to {@code sun.net.www.protocol.http.HttpURLConnection} at FINE, and obeys JVM-wide proxy, redirect and
 * keep-alive settings that have no business on a call to the driver's own broker.
 */
final class HttpGet {

    private static final int MAX_LINE = 8192;
    private static final int MAX_HEADERS = 100;

    /** Status and body of an answer. */
    static final class Response {
        final int status;
        final byte[] body;

        Response(int status, byte[] body) {
            this.status = status;
            this.body = body;
        }
    }

    private HttpGet() {
    }

    /**
     * Connects (and completes the TLS handshake when {@code tls} is not null) within the given times; every
     * exception out of here means no conversation with the server took place.
     */
    static Socket open(String host, int port, SSLSocketFactory tls, int connectTimeoutMs, int readTimeoutMs)
            throws IOException {
        String address = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        Socket socket = new Socket();
        try {
            socket.connect(new InetSocketAddress(address, port), connectTimeoutMs);
            socket.setSoTimeout(readTimeoutMs);
            if (tls == null) {
                return socket;
            }
            SSLSocket ssl = (SSLSocket) tls.createSocket(socket, address, port, true);
            ssl.startHandshake();
            return ssl;
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    /**
     * Sends {@code GET target} with the given extra header lines and reads the answer (at most {@code maxBody}
     * bytes of body). Closes the socket.
     */
    static Response exchange(Socket socket, String hostHeader, String target, String[] headerLines, int maxBody)
            throws IOException {
        return exchange(socket, hostHeader, target, headerLines, null, maxBody);
    }

    /** As above; a non-null {@code body} is sent as {@code POST} with {@code Content-Type: application/json}. */
    static Response exchange(Socket socket, String hostHeader, String target, String[] headerLines, byte[] body,
            int maxBody) throws IOException {
        try (Socket s = socket) {
            StringBuilder request = new StringBuilder()
                    .append(body == null ? "GET " : "POST ").append(target).append(" HTTP/1.1\r\n")
                    .append("Host: ").append(hostHeader).append("\r\n")
                    .append("Connection: close\r\n")
                    .append("User-Agent: lakebase-spark\r\n");
            for (String line : headerLines) {
                request.append(line).append("\r\n");
            }
            if (body != null) {
                request.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
            }
            request.append("\r\n");
            OutputStream out = s.getOutputStream();
            out.write(request.toString().getBytes(StandardCharsets.ISO_8859_1));
            if (body != null) {
                out.write(body);
            }
            out.flush();
            return read(new BufferedInputStream(s.getInputStream()), maxBody);
        }
    }

    private static Response read(InputStream in, int maxBody) throws IOException {
        String statusLine = readLine(in);
        String[] parts = statusLine.split(" ", 3);
        if (parts.length < 2 || !parts[0].startsWith("HTTP/")) {
            throw new IOException("not an HTTP answer");
        }
        int status;
        try {
            status = Integer.parseInt(parts[1]);
        } catch (NumberFormatException e) {
            throw new IOException("not an HTTP status: " + parts[1], e);
        }
        long contentLength = -1;
        for (int i = 0; ; i++) {
            String line = readLine(in);
            if (line.isEmpty()) {
                break;
            }
            if (i >= MAX_HEADERS) {
                throw new IOException("more than " + MAX_HEADERS + " header lines");
            }
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).trim().equalsIgnoreCase("content-length")) {
                try {
                    contentLength = Long.parseLong(line.substring(colon + 1).trim());
                } catch (NumberFormatException e) {
                    throw new IOException("bad Content-Length", e);
                }
            }
        }
        // The broker always sends Content-Length (never chunks, never ends a body by closing): an answer without
        // it did not come from the broker.
        if (contentLength < 0) {
            throw new IOException("an answer without Content-Length");
        }
        if (contentLength > maxBody) {
            throw new IOException("answer larger than " + maxBody + " bytes");
        }
        byte[] body = new byte[(int) contentLength];
        int read = 0;
        while (read < body.length) {
            int n = in.read(body, read, body.length - read);
            if (n < 0) {
                throw new EOFException("answer ended early");
            }
            read += n;
        }
        return new Response(status, body);
    }

    private static String readLine(InputStream in) throws IOException {
        StringBuilder line = new StringBuilder();
        while (true) {
            int c = in.read();
            if (c < 0) {
                throw new EOFException("answer ended early");
            }
            if (c == '\n') {
                int len = line.length();
                return len > 0 && line.charAt(len - 1) == '\r' ? line.substring(0, len - 1) : line.toString();
            }
            if (line.length() >= MAX_LINE) {
                throw new IOException("header line longer than " + MAX_LINE + " characters");
            }
            line.append((char) c);
        }
    }
}
