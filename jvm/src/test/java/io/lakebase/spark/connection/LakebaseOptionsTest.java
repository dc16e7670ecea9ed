package io.lakebase.spark.connection;

import java.util.HashMap;
import java.util.Map;
import org.junit.Test;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

/** Option parsing: every problem names the option and the fix, and never echoes a secret. */
public class LakebaseOptionsTest {

    private static final String SECRET = "s3cret-value-0123456789";

    private static Map<String, String> valid() {
        Map<String, String> o = new HashMap<>();
        o.put("url", "jdbc:postgresql://db.example.com:5432/shop?sslmode=require");
        o.put("user", "someone@example.com");
        o.put(LakebaseOptions.CONNECTION_PROVIDER, "lakebase");
        o.put(LakebaseOptions.BROKER_URL, "http://127.0.0.1:4040");
        o.put(LakebaseOptions.BROKER_SECRET, SECRET);
        o.put(LakebaseOptions.ENDPOINT, "projects/p/branches/b/endpoints/e");
        return o;
    }

    private static String refused(Map<String, String> options) {
        try {
            LakebaseOptions.parse(options);
        } catch (IllegalArgumentException e) {
            assertFalse("a message must not echo the secret", e.getMessage().contains(SECRET));
            return e.getMessage();
        }
        fail("expected the options to be refused: " + options.keySet());
        return null;
    }

    @Test
    public void validOptionsParseWithTheDefaults() {
        LakebaseOptions parsed = LakebaseOptions.parse(valid());
        assertEquals("someone@example.com", parsed.user);
        assertEquals(LakebaseOptions.DEFAULT_COLD_START_TIMEOUT_MS, parsed.coldStartTimeoutMs);
        assertEquals(LakebaseOptions.DEFAULT_CONNECTION_LIMIT_TIMEOUT_MS, parsed.connectionLimitTimeoutMs);
        assertNull("no pin over loopback http", parsed.brokerFingerprint);
        assertEquals("db.example.com:5432", parsed.hosts());
        assertFalse(parsed.toString().contains(SECRET));
    }

    @Test
    public void weakSslmodesAreRefusedInAnyCaseAndStrongOnesAcceptedInAnyCase() {
        for (String mode : new String[] {"disable", "allow", "prefer", "DISABLE", "Prefer"}) {
            Map<String, String> o = valid();
            o.put("sslmode", mode);
            assertTrue(refused(o).contains("Lakebase requires TLS"));
        }
        for (String mode : new String[] {"require", "REQUIRE", "verify-full", "Verify-CA"}) {
            Map<String, String> o = valid();
            o.put("sslmode", mode);
            LakebaseOptions.parse(o);
        }
    }

    @Test
    public void aStaticPasswordIsRefusedNotIgnored() {
        Map<String, String> o = valid();
        o.put("password", "hunter2");
        String message = refused(o);
        assertTrue(message, message.contains("password"));
        assertFalse(message, message.contains("hunter2"));
    }

    @Test
    public void missingAndMalformedBrokerOptionsAreNamed() {
        Map<String, String> o = valid();
        o.remove(LakebaseOptions.BROKER_URL);
        assertTrue(refused(o).contains(LakebaseOptions.BROKER_URL));
        o = valid();
        o.put(LakebaseOptions.BROKER_SECRET, "has a space");
        assertTrue(refused(o).contains(LakebaseOptions.BROKER_SECRET));
        o = valid();
        o.put(LakebaseOptions.BROKER_URL, "https://10.0.0.1:4040");
        assertTrue(refused(o).contains(LakebaseOptions.BROKER_FINGERPRINT));
    }

    @Test
    public void timeoutsMustBeWholeNonNegativeMilliseconds() {
        for (String key : new String[] {LakebaseOptions.COLD_START_TIMEOUT_MS,
                LakebaseOptions.CONNECTION_LIMIT_TIMEOUT_MS}) {
            Map<String, String> o = valid();
            o.put(key, "-1");
            assertTrue(refused(o).contains(key));
            o.put(key, "soon");
            assertTrue(refused(o).contains(key));
            o.put(key, "0");
            LakebaseOptions.parse(o);
        }
    }

    @Test
    public void malformedTargetNamesAreRefused() {
        for (String bad : new String[] {"projects/p/branches/b", "projects/p/branches/b/endpoints/e/x",
                "projects/p q/branches/b/endpoints/e", "projects//branches/b/endpoints/e"}) {
            Map<String, String> o = valid();
            o.put(LakebaseOptions.ENDPOINT, bad);
            assertTrue(refused(o).contains("is not an endpoint name"));
        }
        Map<String, String> o = valid();
        o.remove(LakebaseOptions.ENDPOINT);
        o.put(LakebaseOptions.INSTANCE, "a/b");
        assertTrue(refused(o).contains("is not an instance name"));
    }

    @Test
    public void anEndpointOrAnInstanceIsRequired() {
        Map<String, String> o = valid();
        o.remove(LakebaseOptions.ENDPOINT);
        refused(o);
    }

    @Test
    public void aSnapshotIdIsCheckedBeforeItGoesIntoSql() {
        Map<String, String> o = valid();
        assertNull(LakebaseOptions.parse(o).snapshot);
        o.put(LakebaseOptions.SNAPSHOT, "00000003-0000001B-1");
        assertEquals("00000003-0000001B-1", LakebaseOptions.parse(o).snapshot);
        o.put(LakebaseOptions.SNAPSHOT, "0000-1'; DROP TABLE t; --");
        assertTrue(refused(o).contains(LakebaseOptions.SNAPSHOT));
    }
}
