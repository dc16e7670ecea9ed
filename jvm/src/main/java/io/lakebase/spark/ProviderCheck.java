package io.lakebase.spark;

import io.lakebase.spark.connection.LakebaseOptions;
import java.sql.Driver;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import org.apache.spark.sql.jdbc.JdbcConnectionProvider;

/**
 * {@code lakebase-spark doctor}'s JVM check: with the class path a Spark driver would have, is the provider found by
 * Spark's ServiceLoader (a provider that fails to load is silently left out, and Spark falls back to {@code basic})
 * and is the Postgres JDBC driver loadable? Prints one line per finding; exits 0 when both hold.
 */
public final class ProviderCheck {

    private ProviderCheck() {
    }

    public static void main(String[] args) {
        List<String> names = new ArrayList<>();
        boolean provider = false;
        for (JdbcConnectionProvider p : ServiceLoader.load(JdbcConnectionProvider.class)) {
            names.add(p.name());
            provider |= LakebaseOptions.PROVIDER_NAME.equals(p.name());
        }
        System.out.println((provider ? "ok" : "missing") + " provider: Spark's ServiceLoader finds " + names);
        boolean driver;
        try {
            Driver d = (Driver) Class.forName(LakebaseOptions.POSTGRES_DRIVER).getDeclaredConstructor().newInstance();
            System.out.println("ok driver: " + LakebaseOptions.POSTGRES_DRIVER + " " + d.getMajorVersion() + "."
                    + d.getMinorVersion());
            driver = true;
        } catch (ReflectiveOperationException | LinkageError e) {
            System.out.println("missing driver: " + LakebaseOptions.POSTGRES_DRIVER + " (" + e + ")");
            driver = false;
        }
        System.exit(provider && driver ? 0 : 1);
    }
}
