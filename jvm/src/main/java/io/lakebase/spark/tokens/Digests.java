package io.lakebase.spark.tokens;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;

/** SHA-256, the one digest the provider uses: naming tokens, keying caches, pinning the broker's certificate. */
final class Digests {

    private Digests() {
    }

    static byte[] sha256(byte[] data) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(data);
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError("every JVM has SHA-256", e);
        }
    }

    static byte[] sha256(String text) {
        return sha256(text.getBytes(StandardCharsets.UTF_8));
    }

    /** Lower-case hex of the first {@code bytes} bytes of {@code data}. */
    static String hex(byte[] data, int bytes) {
        StringBuilder out = new StringBuilder(bytes * 2);
        for (int i = 0; i < bytes; i++) {
            out.append(Character.forDigit((data[i] >> 4) & 0xf, 16)).append(Character.forDigit(data[i] & 0xf, 16));
        }
        return out.toString();
    }
}
