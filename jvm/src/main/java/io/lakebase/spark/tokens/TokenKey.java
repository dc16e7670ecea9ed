package io.lakebase.spark.tokens;

import java.util.Arrays;

/** What a cached token is for: one broker (with its secret and pin), one endpoint or instance, one role. */
public final class TokenKey {

    private final String brokerUrl;
    // A digest, not the secret: options carrying a wrong secret must not be served a token cached for the right one,
    // and the key should not keep the secret itself.
    private final byte[] secretDigest;
    private final byte[] fingerprint;
    private final LakebaseTarget target;
    private final String user;

    public TokenKey(String brokerUrl, String secret, byte[] fingerprint, LakebaseTarget target, String user) {
        this.brokerUrl = brokerUrl;
        this.secretDigest = Digests.sha256(secret);
        this.fingerprint = fingerprint == null ? new byte[0] : fingerprint.clone();
        this.target = target;
        this.user = user;
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof TokenKey)) {
            return false;
        }
        TokenKey k = (TokenKey) o;
        return brokerUrl.equals(k.brokerUrl) && Arrays.equals(secretDigest, k.secretDigest)
                && Arrays.equals(fingerprint, k.fingerprint) && target.equals(k.target) && user.equals(k.user);
    }

    @Override
    public int hashCode() {
        int h = brokerUrl.hashCode();
        h = 31 * h + Arrays.hashCode(secretDigest);
        h = 31 * h + Arrays.hashCode(fingerprint);
        h = 31 * h + target.hashCode();
        return 31 * h + user.hashCode();
    }

    @Override
    public String toString() {
        return "TokenKey(" + brokerUrl + ", " + target + ", user=" + user + ")";
    }
}
