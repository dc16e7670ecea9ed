package io.lakebase.spark.tokens;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import org.junit.Test;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

/** The broker's certificate is trusted by its SHA-256 fingerprint and nothing else. */
public class PinnedTrustManagerTest {

    /** A self-signed test certificate (public; its key was thrown away) and its fingerprint from openssl. */
    private static final String PEM = "-----BEGIN CERTIFICATE-----\n"
            + "MIIBlDCCATmgAwIBAgIUM4uD/SeFr7NVbiskzWsm1jYXxn0wCgYIKoZIzj0EAwIw\n"
            + "HjEcMBoGA1UEAwwTbGFrZWJhc2Utc3BhcmsgdGVzdDAgFw0yNjExMzAwODMxMTJa\n"
            + "GA8yMTI2MTEwNjA4MzExMlowHjEcMBoGA1UEAwwTbGFrZWJhc2Utc3BhcmsgdGVz\n"
            + "dDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOMNdh5Yee425lFYRdeuLD2aoSl3\n"
            + "h5qPw42CzovkBx/J+4xRlzkdF7VVeG4AxI8j5K4rJ6lShqdmvZb9LVzS/LOjUzBR\n"
            + "MB0GA1UdDgQWBBRNTeHorNfjVmv1WYOVWFXd7JK6LTAfBgNVHSMEGDAWgBRNTeHo\n"
            + "rNfjVmv1WYOVWFXd7JK6LTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kA\n"
            + "MEYCIQC18U2eP6+AfDhy9p17MdDU5jxSdzJzDK/OGxmg2U0toAIhANx+vjOGklv0\n"
            + "RMZzy48r8qGruCl3BUtbNXNyNmqu+rgo\n"
            + "-----END CERTIFICATE-----\n";
    private static final String FINGERPRINT =
            "C0:A1:2A:FC:4E:D1:C4:19:19:D6:54:9B:62:5B:7D:A1:11:82:39:1E:48:6B:A8:4B:C0:DA:7E:50:F6:C7:51:0E";

    private static X509Certificate certificate() throws CertificateException {
        return (X509Certificate) CertificateFactory.getInstance("X.509")
                .generateCertificate(new ByteArrayInputStream(PEM.getBytes(StandardCharsets.US_ASCII)));
    }

    private static byte[] bytes(String colonHex) {
        String hex = colonHex.replace(":", "");
        byte[] out = new byte[hex.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    @Test
    public void theCertificateWithThePinnedFingerprintIsTrusted() throws CertificateException {
        new PinnedTrustManager(bytes(FINGERPRINT)).checkServerTrusted(new X509Certificate[] {certificate()}, "EC");
        assertTrue(PinnedTrustManager.hex(bytes(FINGERPRINT)).equals(FINGERPRINT));
    }

    @Test
    public void anyOtherCertificateIsRefusedNamingBothFingerprints() throws CertificateException {
        byte[] other = bytes(FINGERPRINT);
        other[0] ^= 1;
        try {
            new PinnedTrustManager(other).checkServerTrusted(new X509Certificate[] {certificate()}, "EC");
            fail("a certificate with another fingerprint must be refused");
        } catch (PinnedTrustManager.PinMismatchException e) {
            assertTrue(e.getMessage(), e.getMessage().contains(FINGERPRINT));
            assertTrue(e.getMessage(), e.getMessage().contains(PinnedTrustManager.hex(other)));
        }
    }

    @Test
    public void noCertificateAndClientCertificatesAreRefused() throws CertificateException {
        PinnedTrustManager pinned = new PinnedTrustManager(bytes(FINGERPRINT));
        for (X509Certificate[] chain : new X509Certificate[][] {null, new X509Certificate[0]}) {
            try {
                pinned.checkServerTrusted(chain, "EC");
                fail("an empty chain must be refused");
            } catch (CertificateException expected) {
                // refused
            }
        }
        try {
            pinned.checkClientTrusted(new X509Certificate[] {certificate()}, "EC");
            fail("client certificates are not used");
        } catch (CertificateException expected) {
            // refused
        }
    }
}
