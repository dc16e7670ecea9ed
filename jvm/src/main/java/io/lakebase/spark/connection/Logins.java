package io.lakebase.spark.connection;

import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.Log;
import io.lakebase.spark.core.ProviderStats;
import io.lakebase.spark.tokens.BrokerClient;
import io.lakebase.spark.tokens.CachedToken;
import io.lakebase.spark.tokens.TokenCache;
import io.lakebase.spark.tokens.TokenKey;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.SQLException;
import java.util.Properties;

/**
 * Logging in to Lakebase Postgres with a short-lived OAuth token from the token broker: the token from this JVM's
 * {@link TokenCache}, one retry with a new token when the database rejects it, cold-start and connection-limit
 * retries ({@link LoginRetry}), and the read's snapshot imported ({@link SharedSnapshot}). Behind the
 * {@code lakebase} JDBC connection provider, the COPY writer and the COPY reader alike.
 */
public final class Logins {

    private final TokenCache cache;

    public Logins(TokenCache cache) {
        this.cache = cache;
    }

    /**
     * A connection for the COPY writer or reader, made exactly as Spark's JDBC data source would make it through this provider
     * (same token cache, TLS rule, auth and cold-start retries), with pgjdbc loaded from the task's class path.
     */
    public static Connection open(LakebaseOptions options) throws SQLException {
        return new Logins(TokenCache.shared()).connect(postgresDriver(), options);
    }

    private static Driver postgresDriver() throws SQLException {
        ClassLoader loader = Thread.currentThread().getContextClassLoader();
        try {
            Class<?> type = Class.forName(LakebaseOptions.POSTGRES_DRIVER, true,
                    loader != null ? loader : Logins.class.getClassLoader());
            return (Driver) type.getDeclaredConstructor().newInstance();
        } catch (ReflectiveOperationException | LinkageError e) {
            throw new LakebaseException.Sql("lakebase: the Postgres JDBC driver (" + LakebaseOptions.POSTGRES_DRIVER
                    + ") is not on this JVM's class path (" + e + "): start Spark with lakebase_spark.configure(...) or "
                    + "pass the driver jar with --jars", "08001", e);
        }
    }

    /**
     * Logs in with the cached token; if the database rejects it (SQLSTATE 28P01/28000), drops exactly that token and
     * tries once more with a new one from the broker.
     */
    public Connection connect(Driver driver, LakebaseOptions options) throws SQLException {
        Properties base = options.driverProperties(driver);
        TokenKey key = options.tokenKey();
        BrokerClient broker = new BrokerClient(options.brokerUrl, options.brokerSecret(), options.brokerFingerprint,
                options.brokerTimeoutMs);
        // A task waiting for another task's broker call waits as long as its own call could take.
        long waitMs = options.brokerTimeoutMs + (long) BrokerClient.CONNECT_TIMEOUT_MS;
        LoginRetry retry = new LoginRetry(options.coldStartTimeoutMs, options.connectionLimitTimeoutMs);

        CachedToken token = cache.get(key, () -> broker.fetch(options.target), waitMs);
        try {
            return login(driver, options, base, token, retry);
        } catch (SQLException e) {
            if (!isAuthFailure(e)) {
                throw e;
            }
            // Retried even for a token fetched just now: it can be revoked between the fetch and the login. The
            // broker mints again only if the refused token is still its current one, so this costs one mint.
            Log.fine("%s rejected the cached token for %s (SQLSTATE %s); retrying once with a new token",
                    options.hosts(), key, e.getSQLState());
            ProviderStats.AUTH_RETRIES.incrementAndGet();
            CachedToken renewed = cache.get(key, () -> broker.fetch(options.target, token), token, waitMs);
            try {
                return login(driver, options, base, renewed, retry);
            } catch (SQLException again) {
                throw isAuthFailure(again) ? authFailed(again, options) : again;
            }
        }
    }

    private static Connection login(Driver driver, LakebaseOptions options, Properties base, CachedToken token,
            LoginRetry retry) throws SQLException {
        Properties props = new Properties();
        props.putAll(base);
        props.setProperty(LakebaseOptions.PASSWORD, token.value());
        return retry.run(() -> {
            Connection c = driver.connect(options.url, props);
            if (c == null) {
                throw new LakebaseException.Sql("lakebase: the Postgres driver did not accept the url for " + options.hosts()
                        + "; it must start with " + PgUrl.PREFIX, "08001");
            }
            ProviderStats.LOGINS.incrementAndGet();
            return options.snapshot != null ? SharedSnapshot.importInto(c, options) : c;
        }, options.hosts());
    }

    /** invalid_password (28P01) or invalid_authorization_specification (28000). */
    public static boolean isAuthFailure(SQLException e) {
        return java.util.Arrays.asList(LoginRetry.AUTH_SQLSTATES).contains(e.getSQLState());
    }

    private static SQLException authFailed(SQLException e, LakebaseOptions options) {
        // pgjdbc's message names the role but never the password; nothing here adds the token.
        return new LakebaseException.Sql("lakebase: " + options.hosts() + " rejected the login of role '" + options.user
                + "' with a token just issued by the broker (SQLSTATE " + e.getSQLState() + ": " + e.getMessage()
                + "). The role may not exist, or may belong to another principal: create it for the principal the "
                + "broker runs as with databricks_create_role (or in the Lakebase UI), and check that option user "
                + "names that principal", e.getSQLState(), e.getErrorCode(), e);
    }
}
