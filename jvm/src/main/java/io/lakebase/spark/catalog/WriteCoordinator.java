package io.lakebase.spark.catalog;

import com.fasterxml.jackson.databind.JsonNode;
import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.core.LakebaseException;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.types.StructType;

/**
 * The JVM's side of a catalog write's coordination: the driver's Python ({@code lakebase_spark/sql/writes.py}, served
 * by the token broker) plans the write exactly as {@code lakebase_spark.write} does (table checks, the commit log, a
 * stage for overwrites) and finishes it (records it done, or applies the stage in one transaction). The rows move
 * between the two calls, on the executors, through the COPY writer. The routes and fields are checked against the
 * Python side by tests/test_contract.py.
 */
final class WriteCoordinator {

    static final String BEGIN = "/v1/writes/begin";
    static final String COMMIT = "/v1/writes/commit";
    static final String ABORT = "/v1/writes/abort";
    /** The begin answer's field: the COPY writer's options for this write ({@code lakebase.write.*}). */
    static final String OPTIONS = "options";
    /** How long the driver's Python may take: an overwrite's apply moves every row once more, inside Postgres. */
    private static final int TIMEOUT_MS = (int) TimeUnit.HOURS.toMillis(6);

    private final LakebaseOptions connection;

    WriteCoordinator(Map<String, String> options) {
        this.connection = LakebaseOptions.parse(options);
    }

    /** Plans the write; returns the writer options to add for it. */
    @SuppressWarnings("deprecation") // JsonNode.fields(): its successor is missing from Spark 3.5's Jackson
    Map<String, String> begin(Identifier table, StructType schema, String mode, boolean atomic, String writeId) {
        Map<String, Object> request = request(writeId);
        request.put("namespace", table.namespace().length == 1 ? table.namespace()[0] : null);
        request.put("table", table.name());
        request.put("schema", schema.json());
        request.put("mode", mode);
        request.put("atomic", atomic && mode.equals("append"));
        JsonNode answer = post(BEGIN, request);
        JsonNode options = answer.get(OPTIONS);
        if (options == null || !options.isObject()) {
            throw new LakebaseException.Options("lakebase: the broker's plan for the write into " + table
                    + " holds no writer options: the driver runs another version of lakebase-spark than this jar");
        }
        Map<String, String> out = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = options.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }

    void commit(String writeId) {
        post(COMMIT, request(writeId));
    }

    void abort(String writeId, String why) {
        Map<String, Object> request = request(writeId);
        request.put("error", why);
        post(ABORT, request);
    }

    private Map<String, Object> request(String writeId) {
        Map<String, Object> request = new HashMap<>(connection.databaseFields());
        request.put("write_id", writeId);
        return request;
    }

    private JsonNode post(String route, Map<String, Object> request) {
        try {
            return connection.brokerClient().post(route, request, TIMEOUT_MS);
        } catch (SQLException e) {
            throw new LakebaseException.WriteFailed(e.getMessage(), e);
        }
    }
}
