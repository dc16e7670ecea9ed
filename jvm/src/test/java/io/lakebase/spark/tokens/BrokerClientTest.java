package io.lakebase.spark.tokens;

import io.lakebase.spark.core.ProviderStats;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.After;
import org.junit.Test;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

/** The broker client against a scripted plain-HTTP server: which answers are retried, and within what time. */
public class BrokerClientTest {

    private static final LakebaseTarget TARGET = new LakebaseTarget(LakebaseTarget.Kind.ENDPOINT,
            "projects/p/branches/b/endpoints/e");
    private static final String OK = "{\"token\": \"tok\", \"expires_in_ms\": 60000, \"refresh_in_ms\": 30000}";

    private ServerSocket server;
    private final AtomicInteger requests = new AtomicInteger();

    /** Serves one scripted answer per connection (status, body), then 200 with a token. */
    private String start(ConcurrentLinkedQueue<String[]> script) throws IOException {
        server = new ServerSocket(0);
        Thread t = new Thread(() -> {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    InputStream in = s.getInputStream();
                    int last = 0;
                    int matched = 0;
                    while (matched < 4 && (last = in.read()) >= 0) { // until the blank line
                        matched = (last == '\r' || last == '\n') ? matched + 1 : 0;
                    }
                    requests.incrementAndGet();
                    String[] answer = script.poll();
                    String status = answer == null ? "200 OK" : answer[0];
                    String body = answer == null ? OK : answer[1];
                    byte[] data = body.getBytes(StandardCharsets.UTF_8);
                    OutputStream out = s.getOutputStream();
                    out.write(("HTTP/1.1 " + status + "\r\nContent-Length: " + data.length
                            + "\r\nConnection: close\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1));
                    out.write(data);
                } catch (IOException e) {
                    return;
                }
            }
        });
        t.setDaemon(true);
        t.start();
        return "http://127.0.0.1:" + server.getLocalPort();
    }

    @After
    public void stop() throws IOException {
        if (server != null) {
            server.close();
        }
    }

    @Test
    public void fiveHundredsAreRetriedUntilATokenComes() throws Exception {
        ConcurrentLinkedQueue<String[]> script = new ConcurrentLinkedQueue<>();
        script.add(new String[] {"503 Service Unavailable", "{\"error\": \"busy\"}"});
        script.add(new String[] {"502 Bad Gateway", "{\"error\": \"mint failed\"}"});
        long retries = ProviderStats.BROKER_RETRIES.get();
        BrokerToken token = new BrokerClient(start(script), "secret", null, 10_000).fetch(TARGET);
        assertEquals("tok", token.value());
        assertEquals(3, requests.get());
        assertEquals(2, ProviderStats.BROKER_RETRIES.get() - retries);
    }

    @Test
    public void fourHundredsFailAtOnce() throws Exception {
        ConcurrentLinkedQueue<String[]> script = new ConcurrentLinkedQueue<>();
        script.add(new String[] {"401 Unauthorized", "{\"error\": \"missing or wrong broker secret\"}"});
        try {
            new BrokerClient(start(script), "secret", null, 10_000).fetch(TARGET);
            fail("401 must not be retried");
        } catch (SQLException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("HTTP 401"));
            assertEquals(1, requests.get());
        }
    }

    @Test
    public void aBrokerThatIsGoneFailsWithinTheConnectRetryWindow() throws Exception {
        ServerSocket closed = new ServerSocket(0);
        int port = closed.getLocalPort();
        closed.close(); // nothing listens: connection refused
        long started = System.nanoTime();
        try {
            new BrokerClient("http://127.0.0.1:" + port, "secret", null, 3_000).fetch(TARGET);
            fail("nothing listens there");
        } catch (SQLException e) {
            long tookMs = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
            assertTrue(e.getMessage(), e.getMessage().contains("unreachable"));
            assertTrue(e.getMessage(), e.getMessage().contains("attempts"));
            assertTrue("took " + tookMs + " ms", tookMs >= 1_000 && tookMs < 6_000);
        }
    }
}
