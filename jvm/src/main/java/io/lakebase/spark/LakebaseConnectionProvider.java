package io.lakebase.spark;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.connection.Logins;
import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.tokens.TokenCache;
import java.sql.Connection;
import java.sql.Driver;
import java.sql.SQLException;
import org.apache.spark.SparkThrowable;
import org.apache.spark.sql.jdbc.JdbcConnectionProvider;
import scala.collection.immutable.Map;

/**
 * Spark JDBC connection provider ({@code connectionProvider=lakebase}) that logs in to Lakebase Postgres with a
 * short-lived OAuth token from the token broker on the Spark driver, so the password is never part of the plan.
 *
 * <p>Stateless apart from the per-JVM {@link TokenCache}; loaded by Spark through
 * {@code META-INF/services/org.apache.spark.sql.jdbc.JdbcConnectionProvider}. The logging in is {@link Logins}'.
 */
public final class LakebaseConnectionProvider extends JdbcConnectionProvider {

    private final Logins logins;

    /** The constructor Spark's ServiceLoader calls; every instance shares this JVM's token cache. */
    public LakebaseConnectionProvider() {
        this(TokenCache.shared());
    }

    LakebaseConnectionProvider(TokenCache cache) {
        this.logins = new Logins(cache);
    }

    @Override
    public String name() {
        return LakebaseOptions.PROVIDER_NAME;
    }

    /** True only for the Postgres driver with Lakebase options, so plain JDBC in the same session is untouched. */
    @Override
    public boolean canHandle(Driver driver, Map<String, String> options) {
        return LakebaseOptions.isPostgresDriver(driver)
                && LakebaseOptions.requestsLakebase(LakebaseOptions.fromScala(options));
    }

    @Override
    public Connection getConnection(Driver driver, Map<String, String> options) {
        LakebaseOptions parsed = LakebaseOptions.parse(LakebaseOptions.fromScala(options));
        try {
            return logins.connect(driver, parsed);
        } catch (SQLException e) {
            // The Scala signature declares no exceptions, yet Spark's own providers let the driver's SQLException
            // through; do the same, so callers still see SQLException and its SQLSTATE. The driver's own errors
            // are wrapped in a SparkThrowable that names the database, or Spark 4 would hide their message.
            SQLException shown = e instanceof SparkThrowable ? e : new LakebaseException.Sql("lakebase: logging in to "
                    + parsed.hosts() + " as role '" + parsed.user + "' failed: " + e.getMessage(), e.getSQLState(),
                    e.getErrorCode(), e);
            throw LakebaseConnectionProvider.<RuntimeException>sneakyThrow(shown);
        }
    }

    /** Does not touch the JVM's security context (no Kerberos), so Spark needs no global lock around it. */
    @Override
    public boolean modifiesSecurityContext(Driver driver, Map<String, String> options) {
        return false;
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> RuntimeException sneakyThrow(Throwable t) throws T {
        throw (T) t;
    }

    @Override
    public String toString() {
        return LakebaseOptions.PROVIDER_NAME;
    }
}
