package io.lakebase.spark.catalog;

import com.fasterxml.jackson.databind.JsonNode;
import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.Log;
import java.sql.SQLException;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.types.StructType;

/**
 * The JVM's side of a catalog read's coordination with the driver's Python ({@code lakebase_spark/sql/reads.py},
 * served by the token broker): the plan of a COPY read (decoders, balanced partitions) and the query's snapshot.
 * Routes and fields are checked against the Python side by tests/test_contract.py.
 */
final class ReadCoordinator {

    static final String PLAN = "/v1/reads/plan";
    static final String SNAPSHOT = "/v1/reads/snapshot";
    static final String RELEASE = "/v1/reads/release";
    /** The plan answer's fields: the COPY source's options, or why the JDBC reader reads instead. */
    static final String OPTIONS = "options";
    static final String UNSUPPORTED = "unsupported";
    /** Planning and exporting take a few queries; an endpoint waking from scale-to-zero takes longer. */
    private static final int TIMEOUT_MS = (int) TimeUnit.MINUTES.toMillis(10);

    private final DriverRequests driver;

    ReadCoordinator(Map<String, String> options) {
        this.driver = new DriverRequests(options);
    }

    /** The COPY source's options for reading {@code schema} of {@code table}, or null (with the reason logged). */
    Map<String, String> plan(Identifier table, StructType schema, String where, String key, int partitions) {
        Map<String, Object> request = driver.request(table);
        request.put("schema", schema.json());
        request.put("where", where);
        request.put("key", key);
        request.put("partitions", partitions);
        JsonNode answer = post(PLAN, request);
        Map<String, String> options = DriverRequests.strings(answer.get(OPTIONS));
        if (options == null) {
            JsonNode why = answer.get(UNSUPPORTED);
            Log.fine("catalog read of %s through Spark's JDBC reader: %s", table,
                    why == null ? "no plan" : why.asText());
        }
        return options;
    }

    /** The snapshot of {@code query} (exported by its first table, shared by the others). */
    String snapshot(String query, long holdSeconds) {
        Map<String, Object> request = driver.request(null);
        request.put("query", query);
        request.put("hold_seconds", holdSeconds);
        JsonNode id = post(SNAPSHOT, request).get("snapshot");
        if (id == null || !id.isTextual()) {
            throw new LakebaseException.Options("lakebase: the broker exported no snapshot: the driver runs another "
                    + "version of lakebase-spark than this jar");
        }
        return id.asText();
    }

    void release(String query) {
        Map<String, Object> request = driver.request(null);
        request.put("query", query);
        post(RELEASE, request);
    }

    private JsonNode post(String route, Map<String, Object> request) {
        try {
            return driver.post(route, request, TIMEOUT_MS);
        } catch (SQLException e) {
            throw new IllegalStateException(e.getMessage(), e);
        }
    }
}
