package io.lakebase.spark.connection;

import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.Log;
import io.lakebase.spark.tokens.BrokerClient;
import io.lakebase.spark.tokens.LakebaseTarget;
import io.lakebase.spark.tokens.TokenKey;
import java.sql.Driver;
import java.sql.DriverPropertyInfo;
import java.sql.SQLException;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.spark.sql.execution.datasources.jdbc.DriverWrapper;
import scala.Tuple2;

/** The Lakebase option keys, their validation, and the properties handed to the Postgres driver. */
public final class LakebaseOptions {

    // Keys are lower-case because Spark's CaseInsensitiveMap iterates lower-cased keys.
    static final String PREFIX = "lakebase.";
    static final String BROKER_URL = "lakebase.broker.url";
    static final String BROKER_SECRET = "lakebase.broker.secret";
    /** Instead of the secret (Spark Connect): the name of the session file that holds it, see {@link SessionFiles}. */
    static final String BROKER_SECRET_FILE = "lakebase.broker.secret.file";
    public static final String BROKER_FINGERPRINT = BrokerClient.FINGERPRINT_OPTION;
    static final String ENDPOINT = "lakebase.endpoint";
    static final String INSTANCE = "lakebase.instance";
    static final String COLD_START_TIMEOUT_MS = "lakebase.coldstart.timeout.ms";
    static final String BROKER_TIMEOUT_MS = "lakebase.broker.timeout.ms";
    static final String CONNECTION_LIMIT_TIMEOUT_MS = "lakebase.connlimit.timeout.ms";
    /** A snapshot exported by the driver ({@code pg_export_snapshot()}) that every connection of a read imports. */
    static final String SNAPSHOT = "lakebase.snapshot";
    /** What pg_export_snapshot() returns (e.g. 00000003-0000001B-1): checked, since it is pasted into SQL. */
    static final String SNAPSHOT_PATTERN = "[0-9A-F]{1,16}(-[0-9A-F]{1,16}){1,3}";
    static final String CONNECTION_PROVIDER = "connectionprovider";
    static final String URL = "url";
    static final String USER = "user";
    static final String PASSWORD = "password";
    static final String SSLMODE = "sslmode";
    static final String SSL = "ssl";

    public static final String PROVIDER_NAME = "lakebase";
    public static final String POSTGRES_DRIVER = "org.postgresql.Driver";
    static final long DEFAULT_COLD_START_TIMEOUT_MS = 30_000L;
    static final long DEFAULT_CONNECTION_LIMIT_TIMEOUT_MS = 60_000L;

    static final String REBUILD = "rebuild the options with lakebase_spark.lakebase_options(...)";
    private static final String USE_TLS = "Lakebase requires TLS; use sslmode=require, verify-ca or verify-full";

    /**
     * Spark's own JDBC data source options (JDBCOptions.jdbcOptionNames, union of Spark 3.5 and 4.x, lower-cased).
     * Spark's basic provider leaves them out of the driver properties; so do we.
     */
    private static final Set<String> SPARK_OPTIONS = Collections.unmodifiableSet(new HashSet<>(Arrays.asList(
            "url", "dbtable", "query", "driver", "partitioncolumn", "lowerbound", "upperbound", "numpartitions",
            "querytimeout", "fetchsize", "truncate", "cascadetruncate", "createtableoptions",
            "createtablecolumntypes", "customschema", "batchsize", "isolationlevel", "sessioninitstatement",
            "pushdownpredicate", "pushdownaggregate", "pushdownlimit", "pushdownoffset", "pushdowntablesample",
            "pushdownjoin", "keytab", "principal", "tablecomment", "refreshkrb5config", "connectionprovider",
            "preparequery", "prefertimestampntz", "prefertimestampnanos", "hint")));

    private static final Set<String> TLS_SSLMODES =
            Collections.unmodifiableSet(new HashSet<>(Arrays.asList("require", "verify-ca", "verify-full")));
    private static final Set<String> WEAK_SSLMODES =
            Collections.unmodifiableSet(new HashSet<>(Arrays.asList("disable", "allow", "prefer")));

    // Name rules, shared with Python's targets.py (tests/test_contract.py compares them).
    static final String SEGMENT_PATTERN = "[A-Za-z0-9][A-Za-z0-9_-]{0,62}";
    static final String ENDPOINT_PATTERN = "projects/(" + SEGMENT_PATTERN + ")/branches/(" + SEGMENT_PATTERN
            + ")/endpoints/(" + SEGMENT_PATTERN + ")";
    private static final Pattern ENDPOINT_NAME = Pattern.compile(ENDPOINT_PATTERN);
    private static final Pattern INSTANCE_NAME = Pattern.compile(SEGMENT_PATTERN);

    /** Normalised broker base URL (scheme and host lower-case, no trailing slash); not secret. */
    final String brokerUrl;
    private final String brokerSecret;
    /** SHA-256 of the broker's leaf certificate, or null over loopback http. */
    final byte[] brokerFingerprint;
    final LakebaseTarget target;
    public final String user;
    public final String url;
    final long coldStartTimeoutMs;
    /** How long a login waits for a free connection slot (SQLSTATE 53300) before failing. */
    final long connectionLimitTimeoutMs;
    /** How long to wait for the broker's answer: the helpers size it from the SDK's retry budget. */
    final int brokerTimeoutMs;
    /** The snapshot every connection of this read imports, or null. */
    final String snapshot;
    private final PgUrl pgUrl;
    private final Map<String, String> options;

    private LakebaseOptions(Map<String, String> options) {
        this.options = options;
        this.url = required(URL, "set it to jdbc:postgresql://<host>:5432/<database>?sslmode=require");
        if (!url.regionMatches(true, 0, PgUrl.PREFIX, 0, PgUrl.PREFIX.length())) {
            throw new LakebaseException.Options("lakebase: url must start with " + PgUrl.PREFIX + " (got '"
                    + beforeQuery(url) + "'): the lakebase provider only connects through the Postgres driver");
        }
        this.pgUrl = PgUrl.parse(url);
        this.user = resolveUser();
        if (options.get(PASSWORD) != null) {
            // Spark would pass it on and the login would ignore it: say so instead of dropping it silently.
            throw new LakebaseException.Options("lakebase: option password is set, but connectionProvider=lakebase "
                    + "logs in with a short-lived token from the broker and never uses a static password; remove "
                    + ".option(\"password\", ...) (or use connectionProvider=basic for a static password)");
        }
        if (pgUrl.param(PASSWORD) != null) {
            throw new LakebaseException.Options("lakebase: the url contains a password parameter; remove it: "
                    + "the provider logs in with a token from the broker, and a password in the url would override it");
        }
        checkTls();
        this.brokerUrl = BrokerUrls.parse(required(BROKER_URL, REBUILD));
        this.brokerSecret = resolveBrokerSecret();
        if (!brokerSecret.matches("[\\x21-\\x7e]+")) {
            // Do not echo the value. It goes into an HTTP header, where CR/LF would split the request.
            throw new LakebaseException.Options("lakebase: option " + BROKER_SECRET + " must be printable ASCII "
                    + "without spaces; " + REBUILD);
        }
        this.brokerFingerprint = brokerUrl.startsWith("https:") ? parseFingerprint() : null;
        this.target = parseTarget();
        this.coldStartTimeoutMs = parseMillis(COLD_START_TIMEOUT_MS, DEFAULT_COLD_START_TIMEOUT_MS, 0,
                "0 turns off retries while a scaled-to-zero endpoint starts");
        this.connectionLimitTimeoutMs = parseMillis(CONNECTION_LIMIT_TIMEOUT_MS, DEFAULT_CONNECTION_LIMIT_TIMEOUT_MS, 0,
                "0 fails at the first 'too many connections' (SQLSTATE 53300) instead of waiting for a free one");
        this.brokerTimeoutMs = (int) Math.min(Integer.MAX_VALUE, parseMillis(BROKER_TIMEOUT_MS,
                BrokerClient.READ_TIMEOUT_MS, 1000, "how long to wait for the broker to mint a token"));
        this.snapshot = parseSnapshot();
    }

    private String parseSnapshot() {
        String value = options.get(SNAPSHOT);
        if (value == null || value.trim().isEmpty()) {
            return null;
        }
        if (!value.trim().matches(SNAPSHOT_PATTERN)) {
            throw new LakebaseException.Options("lakebase: option " + SNAPSHOT + " must be a snapshot id from "
                    + "pg_export_snapshot() (e.g. 00000003-0000001B-1), got '" + value + "'; let "
                    + "lakebase_spark.read(..., consistent=True) set it");
        }
        return value.trim();
    }

    /** Copies Spark's option map into a Java map with lower-case keys (the only place that touches Scala). */
    public static Map<String, String> fromScala(scala.collection.immutable.Map<String, String> options) {
        Map<String, String> out = new LinkedHashMap<>();
        scala.collection.Iterator<Tuple2<String, String>> it = options.iterator();
        while (it.hasNext()) {
            Tuple2<String, String> kv = it.next();
            out.put(kv._1().toLowerCase(Locale.ROOT), kv._2());
        }
        return out;
    }

    /** Spark hands options with the user's key case; the provider reads lower-cased keys. */
    public static Map<String, String> lowerCased(Map<String, String> options) {
        Map<String, String> out = new HashMap<>();
        for (Map.Entry<String, String> e : options.entrySet()) {
            out.put(e.getKey().toLowerCase(Locale.ROOT), e.getValue());
        }
        return out;
    }

    /** Validates the options; every problem is an IllegalArgumentException that names the option and the fix. */
    public static LakebaseOptions parse(Map<String, String> options) {
        return new LakebaseOptions(options);
    }

    /** True when Spark's (possibly wrapped) driver is pgjdbc; matched by name so pgjdbc need not be linked. */
    public static boolean isPostgresDriver(Driver driver) {
        Driver d = driver instanceof DriverWrapper ? ((DriverWrapper) driver).wrapped() : driver;
        return d != null && POSTGRES_DRIVER.equals(d.getClass().getName());
    }

    /**
     * True when the options ask for this provider: the broker URL with an endpoint or instance, or Spark's
     * {@code connectionProvider=lakebase} (so a missing key is reported by getConnection, not by Spark's
     * "no provider can handle" message). Plain Postgres options never match.
     */
    public static boolean requestsLakebase(Map<String, String> options) {
        boolean keys = present(options.get(BROKER_URL))
                && (present(options.get(ENDPOINT)) || present(options.get(INSTANCE)));
        String provider = options.get(CONNECTION_PROVIDER);
        return keys || (provider != null && PROVIDER_NAME.equalsIgnoreCase(provider.trim()));
    }

    /** The broker secret; callers must not log or embed it. */
    String brokerSecret() {
        return brokerSecret;
    }

    /** A client of this option set's broker (the catalog asks it to plan and finish writes). */
    public BrokerClient brokerClient() {
        return new BrokerClient(brokerUrl, brokerSecret, brokerFingerprint, brokerTimeoutMs);
    }

    /** The Lakebase database these options reach, as the broker's JSON names it: the target plus the database. */
    public Map<String, String> databaseFields() {
        Map<String, String> fields = new HashMap<>(target.fields());
        String database = pgUrl.database();
        if (database == null) {
            throw new LakebaseException.Options("lakebase: the url names no database (jdbc:postgresql://host:port/"
                    + "<database>); " + REBUILD);
        }
        fields.put("database", database);
        return fields;
    }

    /** Where the driver connects, for messages: host:port only, never the query string. */
    public String hosts() {
        return pgUrl.hosts();
    }

    /** The per-JVM cache key for this option set's token. */
    TokenKey tokenKey() {
        return new TokenKey(brokerUrl, brokerSecret, brokerFingerprint, target, user);
    }

    /**
     * Properties for {@code driver.connect(url, props)}, without the password (the token is added per attempt).
     *
     * <p>Every option except {@code lakebase.*}, Spark's own JDBC options and any {@code password} goes through;
     * {@code user} is the resolved role; {@code sslmode=require} is added when the url and options leave TLS to
     * pgjdbc's default ({@code prefer}). Spark hands us lower-cased keys, so known pgjdbc property names are given
     * back their canonical case (pgjdbc reads properties case-sensitively: {@code applicationname} would be ignored).
     */
    Properties driverProperties(Driver driver) {
        Map<String, String> canonical = canonicalPropertyNames(driver);
        Properties props = new Properties();
        for (Map.Entry<String, String> e : options.entrySet()) {
            String key = e.getKey();
            if (key.startsWith(PREFIX) || SPARK_OPTIONS.contains(key) || key.equals(PASSWORD) || key.equals(USER)) {
                continue;
            }
            String name = canonical.get(key);
            props.setProperty(name != null ? name : key, e.getValue());
        }
        props.setProperty(USER, user);
        if (needsDefaultSslmode()) {
            props.setProperty(SSLMODE, "require");
        }
        return props;
    }

    private Map<String, String> canonicalPropertyNames(Driver driver) {
        Map<String, String> names = new HashMap<>();
        try {
            for (DriverPropertyInfo info : driver.getPropertyInfo(url, new Properties())) {
                names.put(info.name.toLowerCase(Locale.ROOT), info.name);
            }
        } catch (SQLException e) {
            // Only costs the case fix-up of mixed-case property names; the connection attempt reports real errors.
            Log.fine("pgjdbc did not list its properties (%s); passing option names as given", e.getSQLState());
        }
        return names;
    }

    private String resolveUser() {
        String fromOptions = blankToNull(options.get(USER));
        // pgjdbc lets url parameters override properties, so a user in the url is the one that logs in.
        String fromUrl = blankToNull(pgUrl.exactParam(USER));
        if (fromOptions != null && fromUrl != null && !fromOptions.equals(fromUrl)) {
            throw new LakebaseException.Options("lakebase: the Postgres role is set twice, user='" + fromOptions
                    + "' in the options and user='" + fromUrl + "' in the url; keep one");
        }
        String resolved = fromUrl != null ? fromUrl : fromOptions;
        if (resolved == null) {
            throw new LakebaseException.Options("lakebase: option user is missing: set it to the Postgres role of the "
                    + "principal the broker mints tokens for (lakebase_spark.lakebase_options(...) sets it)");
        }
        return resolved;
    }

    private void checkTls() {
        String urlSslmode = pgUrl.param(SSLMODE);
        String optSslmode = options.get(SSLMODE);
        checkSslmode(urlSslmode, "in the url");
        checkSslmode(optSslmode, "in option sslmode");
        checkSsl(pgUrl.param(SSL), "in the url");
        checkSsl(options.get(SSL), "in option ssl");
    }

    private static void checkSslmode(String value, String where) {
        // pgjdbc reads sslmode case-insensitively (REQUIRE is require): so does this check, in both directions.
        if (value == null || TLS_SSLMODES.contains(value.trim().toLowerCase(Locale.ROOT))) {
            return;
        }
        String reason = WEAK_SSLMODES.contains(value.trim().toLowerCase(Locale.ROOT))
                ? "is not allowed" : "is not a valid sslmode";
        throw new LakebaseException.Options(
                "lakebase: sslmode=" + value + " " + where + " " + reason + ": " + USE_TLS);
    }

    private static void checkSsl(String value, String where) {
        if (value != null && value.trim().equalsIgnoreCase("false")) {
            throw new LakebaseException.Options("lakebase: ssl=" + value + " " + where + " is not allowed: " + USE_TLS);
        }
    }

    /** True unless the url or options already pick a TLS mode (pgjdbc reads ssl=true or bare ssl as verify-full). */
    private boolean needsDefaultSslmode() {
        // Exact-case url keys here: that is what pgjdbc reads, and url parameters override properties.
        if (pgUrl.exactParam(SSLMODE) != null || options.get(SSLMODE) != null) {
            return false; // already checked to be require, verify-ca or verify-full
        }
        String ssl = pgUrl.exactParam(SSL) != null ? pgUrl.exactParam(SSL) : options.get(SSL);
        return ssl == null || !(ssl.isEmpty() || ssl.equalsIgnoreCase("true"));
    }

    private byte[] parseFingerprint() {
        String raw = blankToNull(options.get(BROKER_FINGERPRINT));
        if (raw == null) {
            throw new LakebaseException.Options("lakebase: " + BROKER_URL + "='" + brokerUrl + "' uses https but "
                    + BROKER_FINGERPRINT + " is missing: the provider pins the broker's certificate by its SHA-256 "
                    + "fingerprint; " + REBUILD);
        }
        String hex = raw.replace(":", "").trim().toLowerCase(Locale.ROOT);
        if (!hex.matches("[0-9a-f]{64}")) {
            throw new LakebaseException.Options("lakebase: " + BROKER_FINGERPRINT + "='" + raw + "' is not a SHA-256 "
                    + "fingerprint (64 hex digits, colons optional); " + REBUILD);
        }
        byte[] out = new byte[32];
        for (int i = 0; i < 32; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    private LakebaseTarget parseTarget() {
        String endpoint = blankToNull(options.get(ENDPOINT));
        String instance = blankToNull(options.get(INSTANCE));
        String which = "set exactly one of " + ENDPOINT + " (Lakebase Autoscaling, projects/<project>/branches/"
                + "<branch>/endpoints/<endpoint>) or " + INSTANCE + " (Lakebase Provisioned)";
        if (endpoint != null && instance != null) {
            throw new LakebaseException.Options("lakebase: " + which + "; both are set (" + ENDPOINT + "='" + endpoint
                    + "', " + INSTANCE + "='" + instance + "')");
        }
        if (endpoint == null && instance == null) {
            throw new LakebaseException.Options("lakebase: " + which + "; neither is set");
        }
        if (endpoint != null) {
            if (!ENDPOINT_NAME.matcher(endpoint).matches()) {
                throw new LakebaseException.Options("lakebase: " + ENDPOINT + "='" + endpoint + "' is not an endpoint "
                        + "name: expected projects/<project>/branches/<branch>/endpoints/<endpoint> "
                        + "(for a Lakebase Provisioned instance use " + INSTANCE + ")");
            }
            return new LakebaseTarget(LakebaseTarget.Kind.ENDPOINT, endpoint);
        }
        if (!INSTANCE_NAME.matcher(instance).matches()) {
            throw new LakebaseException.Options("lakebase: " + INSTANCE + "='" + instance + "' is not an instance "
                    + "name: expected 1 to 63 letters, digits, '-' or '_' (for a Lakebase Autoscaling endpoint use "
                    + ENDPOINT + ")");
        }
        return new LakebaseTarget(LakebaseTarget.Kind.INSTANCE, instance);
    }

    private long parseMillis(String key, long fallback, long min, String meaning) {
        String raw = blankToNull(options.get(key));
        if (raw == null) {
            return fallback;
        }
        try {
            long ms = Long.parseLong(raw);
            if (ms >= min) {
                return ms;
            }
        } catch (NumberFormatException e) {
            // fall through to the message below
        }
        throw new LakebaseException.Options("lakebase: " + key + "='" + raw + "' must be a whole number of "
                + "milliseconds >= " + min + " (" + meaning + ")");
    }

    private String resolveBrokerSecret() {
        String file = blankToNull(options.get(BROKER_SECRET_FILE));
        if (file == null) {
            return required(BROKER_SECRET, REBUILD);
        }
        if (!file.matches(SessionFiles.NAME_PATTERN)) {
            throw new LakebaseException.Options("lakebase: option " + BROKER_SECRET_FILE + " must name a session file "
                    + "lakebase_options shipped (" + SessionFiles.NAME_PATTERN + "), got '" + file + "'; " + REBUILD);
        }
        String secret = SessionFiles.read(file);
        if (secret == null) {
            throw new LakebaseException.Options("lakebase: the session file " + file + " that carries the broker "
                    + "secret (option " + BROKER_SECRET_FILE + ") is not on this node: use options built by "
                    + "lakebase_options in the Spark Connect session that runs the query; " + REBUILD);
        }
        return secret;
    }

    private String required(String key, String fix) {
        String value = blankToNull(options.get(key));
        if (value == null) {
            throw new LakebaseException.Options("lakebase: option " + key + " is missing: " + fix);
        }
        return value;
    }

    private static boolean present(String value) {
        return blankToNull(value) != null;
    }

    private static String blankToNull(String value) {
        return value == null || value.trim().isEmpty() ? null : value.trim();
    }

    private static String beforeQuery(String url) {
        int q = url.indexOf('?');
        return q < 0 ? url : url.substring(0, q);
    }

    @Override
    public String toString() {
        return "LakebaseOptions(broker=" + brokerUrl + ", " + target + ", user=" + user + ", secret=***)";
    }
}
