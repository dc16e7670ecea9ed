package io.lakebase.spark.catalog;

import io.lakebase.spark.core.Log;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.apache.spark.SparkContext;
import org.apache.spark.TaskContext;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerEvent;
import org.apache.spark.sql.execution.ui.SparkListenerSQLExecutionEnd;

/**
 * One snapshot per Spark SQL execution. Whoever first needs it when the query runs (a task of its first COPY
 * partition, or the driver handing a snapshot to Spark's JDBC scan) has the driver's Python export it; every other
 * partition and table of the same execution imports the same one (a join sees one moment). A query is named by the
 * driver JVM's id and the execution id, which tasks read from their job's properties. The driver releases it when the
 * execution ends ({@code SparkListenerSQLExecutionEnd}), so no connection stays open for the snapshot's whole hold;
 * explaining a query takes none. Work outside any execution (an RDD of a catalog table) holds its own for
 * {@link #UNTRACKED_HOLD}.
 */
final class QuerySnapshots {

    /** How long the snapshot of a query, released when its execution ends, may be held at most. */
    static final long HOLD_SECONDS = 3600;
    /** ... and of a scan run outside any execution, which nothing releases. */
    static final long UNTRACKED_HOLD = 600;
    private static final String EXECUTION_ID = "spark.sql.execution.id";
    /** This JVM's id: a driver's queries are named by it (execution ids restart at 0 in every driver JVM). */
    static final String JVM = UUID.randomUUID().toString();
    /** Each catalog's options (by its broker and database) whose queries the driver releases. */
    private static final Map<String, Map<String, String>> CATALOGS = new ConcurrentHashMap<>();
    /** Snapshots this JVM already has, by query (bounded: an executor lives through many queries). */
    private static final Map<String, String> KNOWN = Collections.synchronizedMap(
            new LinkedHashMap<String, String>(16, 0.75f, true) {
                private static final long serialVersionUID = 1L;

                @Override
                protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
                    return size() > 256;
                }
            });
    private static final ExecutorService RELEASES = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "lakebase-snapshot-release");
        t.setDaemon(true);
        return t;
    });
    private static SparkContext listening;

    private QuerySnapshots() {}

    /** The running execution's query name on the driver, or null outside any execution. */
    static String driverQuery() {
        String execution = SparkContext.getOrCreate().getLocalProperty(EXECUTION_ID);
        return execution == null ? null : JVM + ":" + execution;
    }

    /** On an executor: the query name of the task's execution ({@code driverJvm}'s), or {@code untracked}. */
    static String taskQuery(String driverJvm, String untracked) {
        TaskContext task = TaskContext.get();
        String execution = task == null ? null : task.getLocalProperty(EXECUTION_ID);
        return execution == null ? untracked : driverJvm + ":" + execution;
    }

    /** The snapshot of {@code query} on these options' database, exported by the driver's Python on first use. */
    static String snapshot(String query, Map<String, String> options) {
        String key = query + " " + options.get("url");
        String known = KNOWN.get(key);
        if (known != null) {
            return known;
        }
        boolean tracked = !query.contains(":scan:");
        String id = new ReadCoordinator(options).snapshot(query, tracked ? HOLD_SECONDS : UNTRACKED_HOLD);
        KNOWN.put(key, id);
        return id;
    }

    /** On the driver: release the snapshots of this catalog's queries as their executions end. */
    static synchronized void releaseOnQueryEnd(Map<String, String> options) {
        CATALOGS.putIfAbsent(options.get("lakebase.broker.url") + " " + options.get("url"), options);
        SparkContext context = SparkContext.getOrCreate();
        if (listening == context) {
            return;
        }
        context.addSparkListener(new SparkListener() {
            @Override
            public void onOtherEvent(SparkListenerEvent event) {
                if (event instanceof SparkListenerSQLExecutionEnd) {
                    String query = JVM + ":" + ((SparkListenerSQLExecutionEnd) event).executionId();
                    RELEASES.execute(() -> release(query));
                }
            }
        });
        listening = context;
    }

    /** Every execution's end is told (the executors asked for its snapshot, not the driver): a no-op if it had none. */
    private static void release(String query) {
        for (Map<String, String> options : CATALOGS.values()) {
            try {
                new ReadCoordinator(options).release(query);
            } catch (RuntimeException e) {
                // The hold ends it anyway; a broker that is gone took the snapshot's connection with it.
                Log.fine("could not release the snapshot of query %s: %s", query, e.getMessage());
            }
        }
    }
}
