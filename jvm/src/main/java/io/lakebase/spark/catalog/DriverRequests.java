package io.lakebase.spark.catalog;

import com.fasterxml.jackson.databind.JsonNode;
import io.lakebase.spark.connection.LakebaseOptions;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import org.apache.spark.sql.connector.catalog.Identifier;

/** What the coordinators share: JSON requests about one database (and table) to the driver's Python. */
final class DriverRequests {

    private final LakebaseOptions connection;

    DriverRequests(Map<String, String> options) {
        this.connection = LakebaseOptions.parse(options);
    }

    /** A request naming the database these options reach, and {@code table} unless null. */
    Map<String, Object> request(Identifier table) {
        Map<String, Object> request = new HashMap<>(connection.databaseFields());
        if (table != null) {
            request.put("namespace", table.namespace().length == 1 ? table.namespace()[0] : null);
            request.put("table", table.name());
        }
        return request;
    }

    JsonNode post(String route, Map<String, Object> request, int timeoutMs) throws SQLException {
        return connection.brokerClient().post(route, request, timeoutMs);
    }

    /** An answer's JSON object as strings, or null when it is not an object. */
    @SuppressWarnings("deprecation") // JsonNode.fields(): its successor is missing from Spark 3.5's Jackson
    static Map<String, String> strings(JsonNode object) {
        if (object == null || !object.isObject()) {
            return null;
        }
        Map<String, String> out = new HashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = object.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            out.put(e.getKey(), e.getValue().asText());
        }
        return out;
    }
}
