package io.lakebase.spark.tokens;

import java.net.Socket;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLSocketFactory;
import javax.net.ssl.TrustManager;
import javax.net.ssl.X509ExtendedTrustManager;

/**
 * Trusts exactly one server certificate, named by the SHA-256 fingerprint of its DER encoding.
 *
 * <p>The broker's certificate is self-signed and generated per broker, so there is no CA to check against and the
 * host name it is reached by (the driver's address) is not known when it is made; the pin, passed to executors in
 * the options, is the stronger check. Extending {@link X509ExtendedTrustManager} keeps JSSE from adding its own
 * endpoint identification on top.
 */
final class PinnedTrustManager extends X509ExtendedTrustManager {

    /** The certificate the server presented is not the pinned one. */
    static final class PinMismatchException extends CertificateException {
        private static final long serialVersionUID = 1L;

        PinMismatchException(String message) {
            super(message);
        }
    }

    private final byte[] expected;

    PinnedTrustManager(byte[] sha256Fingerprint) {
        this.expected = sha256Fingerprint.clone();
    }

    /** A socket factory whose connections succeed only against the pinned certificate. */
    static SSLSocketFactory socketFactory(byte[] sha256Fingerprint) throws GeneralSecurityException {
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, new TrustManager[] {new PinnedTrustManager(sha256Fingerprint)}, null);
        return context.getSocketFactory();
    }

    private void check(X509Certificate[] chain) throws CertificateException {
        if (chain == null || chain.length == 0) {
            throw new CertificateException("the broker presented no certificate");
        }
        byte[] actual = Digests.sha256(chain[0].getEncoded());
        if (!MessageDigest.isEqual(expected, actual)) {
            throw new PinMismatchException("the broker's certificate has SHA-256 fingerprint " + hex(actual)
                    + ", not the pinned " + hex(expected));
        }
    }

    /** Upper-case, colon-separated hex, as {@code openssl x509 -fingerprint -sha256} prints it. */
    static String hex(byte[] bytes) {
        StringBuilder sb = new StringBuilder(bytes.length * 3);
        for (byte b : bytes) {
            if (sb.length() > 0) {
                sb.append(':');
            }
            sb.append(String.format("%02X", b & 0xff));
        }
        return sb.toString();
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        check(chain);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        check(chain);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
        throw new CertificateException("client certificates are not used");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
            throws CertificateException {
        throw new CertificateException("client certificates are not used");
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
            throws CertificateException {
        throw new CertificateException("client certificates are not used");
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
        return new X509Certificate[0];
    }
}
