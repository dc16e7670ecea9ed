package io.lakebase.spark.catalog;

import com.fasterxml.jackson.databind.JsonNode;
import io.lakebase.spark.core.LakebaseException;
import java.sql.SQLException;
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

    private final DriverRequests driver;

    WriteCoordinator(Map<String, String> options) {
        this.driver = new DriverRequests(options);
    }

    /** Plans the write; returns the writer options to add for it. */
    Map<String, String> begin(Identifier table, StructType schema, String mode, boolean atomic, String writeId) {
        Map<String, Object> request = request(table, writeId);
        request.put("schema", schema.json());
        request.put("mode", mode);
        request.put("atomic", atomic && mode.equals("append"));
        Map<String, String> options = DriverRequests.strings(post(BEGIN, request).get(OPTIONS));
        if (options == null) {
            throw new LakebaseException.Options("lakebase: the broker's plan for the write into " + table
                    + " holds no writer options: the driver runs another version of lakebase-spark than this jar");
        }
        return options;
    }

    void commit(String writeId) {
        post(COMMIT, request(null, writeId));
    }

    void abort(String writeId, String why) {
        Map<String, Object> request = request(null, writeId);
        request.put("error", why);
        post(ABORT, request);
    }

    private Map<String, Object> request(Identifier table, String writeId) {
        Map<String, Object> request = driver.request(table);
        request.put("write_id", writeId);
        return request;
    }

    private JsonNode post(String route, Map<String, Object> request) {
        try {
            return driver.post(route, request, TIMEOUT_MS);
        } catch (SQLException e) {
            throw new LakebaseException.WriteFailed(e.getMessage(), e);
        }
    }
}
