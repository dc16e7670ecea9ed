package io.lakebase.spark.read;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.connection.Logins;
import io.lakebase.spark.core.Log;
import java.io.IOException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.Map;
import org.apache.spark.sql.connector.read.PartitionReader;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.jdbc.JdbcDialects;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ColumnarBatch;

/**
 * One partition of a COPY read: one connection (the partition's snapshot imported by the provider), one
 * {@code COPY ... TO STDOUT (FORMAT binary)}, decoded into the same column vectors batch after batch, so memory stays
 * flat in rows. Closing closes the connection, also when the COPY is cut short (a limit, a killed task).
 */
final class CopyPartitionReader implements PartitionReader<ColumnarBatch> {

    private final Connection connection;
    private final CopyOutStream stream;
    private final BinaryRowDecoder decoder;
    private final WritableColumnVector[] vectors;
    private final ColumnarBatch batch;
    private final int batchRows;
    private final String table;
    private boolean done;

    CopyPartitionReader(StructType schema, Map<String, String> options, List<ReadOptions.Column> columns,
            CopyScan.CopyPartition partition, int batchRows) {
        LakebaseOptions parsed = LakebaseOptions.parse(options);
        this.table = options.get(ReadOptions.TABLE);
        this.batchRows = batchRows;
        Connection opened = null;
        try {
            opened = Logins.open(parsed);
            PgTimes times = PgTimes.of(opened, JdbcDialects.get(parsed.url));
            this.decoder = new BinaryRowDecoder(columns, schema, times);
            this.stream = CopyOutStream.open(opened, partition.sql);
        } catch (SQLException | RuntimeException e) {
            closeQuietly(opened);
            throw failure("starting partition " + partition.index, e);
        }
        this.connection = opened;
        this.vectors = OnHeapColumnVector.allocateColumns(batchRows, schema);
        this.batch = new ColumnarBatch(vectors);
    }

    @Override
    public boolean next() throws IOException {
        if (done) {
            return false;
        }
        for (WritableColumnVector v : vectors) {
            v.reset();
        }
        int rows = 0;
        try {
            while (rows < batchRows) {
                byte[] message = stream.next();
                if (message == null) {
                    done = true;
                    break;
                }
                if (decoder.decode(message, vectors, rows)) {
                    rows++;
                }
            }
        } catch (SQLException e) {
            throw failure("reading", e);
        }
        batch.setNumRows(rows);
        return rows > 0;
    }

    @Override
    public ColumnarBatch get() {
        return batch;
    }

    @Override
    public void close() {
        closeQuietly(connection);
        batch.close();
    }

    private RuntimeException failure(String what, Exception e) {
        if (e instanceof RuntimeException) {
            return (RuntimeException) e;
        }
        SQLException sql = (SQLException) e;
        if (sql instanceof org.apache.spark.SparkThrowable) {
            return new IllegalStateException(sql.getMessage(), sql);
        }
        return new IllegalStateException("lakebase: COPY read of " + table + " failed " + what + " (SQLSTATE "
                + sql.getSQLState() + "): " + sql.getMessage(), sql);
    }

    private static void closeQuietly(Connection connection) {
        if (connection == null) {
            return;
        }
        try {
            connection.close();
        } catch (SQLException e) {
            Log.fine("closing a COPY read's connection failed (SQLSTATE %s)", e.getSQLState());
        }
    }
}
