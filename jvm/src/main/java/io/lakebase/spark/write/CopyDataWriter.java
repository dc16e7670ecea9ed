package io.lakebase.spark.write;

import io.lakebase.spark.connection.LakebaseOptions;
import io.lakebase.spark.connection.Logins;
import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.Log;
import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.spark.SparkThrowable;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.connector.write.DataWriter;
import org.apache.spark.sql.connector.write.WriterCommitMessage;

/**
 * One task attempt's share of a write: one transaction holding one {@code COPY ... FROM STDIN} of the partition's
 * rows and the partition's marker row.
 *
 * <p>Exactly once: the marker's primary key is {@code (target, write_id, part)}. An attempt that finds its marker
 * at start sends nothing; two attempts racing (speculation, a retry after a commit that was reported failed) both
 * COPY, but the second marker insert waits for the first transaction and then fails with a unique violation, so
 * its rows are rolled back. Memory stays flat: rows are encoded into a 64 KiB buffer that is streamed as it fills.
 */
final class CopyDataWriter implements DataWriter<InternalRow> {

    static final int FLUSH_BYTES = 64 * 1024;
    /** COPY's context line; a value's own parser may add lines before it (json: "JSON data, line 1: ..."). */
    private static final Pattern COPY_WHERE = Pattern.compile("COPY [^\\n]*?, line (\\d+)(?:, column ([^:\\n]+))?");

    private final LakebaseOptions options;
    private final WriteOptions write;
    private final CopyTextEncoder encoder;
    private final int partition;
    private final int numPartitions;
    private final int attempt;
    private final CopyBuffer buffer = new CopyBuffer(FLUSH_BYTES + 4096);
    private final Connection connection;
    /** True when this partition of this write is already committed: rows are counted, not sent. */
    private final boolean skip;
    private CopyStream stream;
    private long rows;

    CopyDataWriter(LakebaseOptions options, WriteOptions write, CopyTextEncoder encoder, int partition,
            int numPartitions, int attempt) {
        this.options = options;
        this.write = write;
        this.encoder = encoder;
        this.partition = partition;
        this.numPartitions = numPartitions;
        this.attempt = attempt;
        Connection opened = null;
        try {
            opened = Logins.open(options);
            opened.setAutoCommit(false);
            this.skip = write.commits != null && alreadyCommitted(opened);
            if (!skip) {
                this.stream = CopyStream.open(opened, write.copySql());
            }
        } catch (SQLException e) {
            closeQuietly(opened);
            throw failure("starting the COPY", e);
        }
        this.connection = opened;
    }

    private boolean alreadyCommitted(Connection conn) throws SQLException {
        String sql = "SELECT min(parts), max(parts), coalesce(bool_or(part = ?), false) FROM " + write.commits
                + " WHERE target = ? AND write_id = ? AND part >= 0";
        try (PreparedStatement st = conn.prepareStatement(sql)) {
            st.setInt(1, partition);
            st.setString(2, write.table);
            st.setString(3, write.writeId);
            try (ResultSet rs = st.executeQuery()) {
                rs.next();
                int min = rs.getInt(1);
                boolean started = !rs.wasNull();
                int max = rs.getInt(2);
                if (started && (min != numPartitions || max != numPartitions)) {
                    throw new LakebaseException.Options("lakebase: write id '" + write.writeId + "' into "
                            + write.table + " was started with " + max + " partitions and this run has "
                            + numPartitions + ": a rerun must split the rows the same way to finish it exactly once "
                            + "(same input, or df.repartition(" + max + ")), or use a new write id");
                }
                return rs.getBoolean(3);
            }
        }
    }

    @Override
    public void write(InternalRow row) throws IOException {
        rows++;
        if (skip) {
            return;
        }
        try {
            encoder.encode(row, buffer);
        } catch (CopyTextEncoder.BadValue e) {
            throw new WriteFailure("lakebase: cannot write row " + rows + " of partition " + partition + " into "
                    + write.table + ": " + e.getMessage() + "; nothing of this partition was committed", null, e);
        }
        if (buffer.length >= FLUSH_BYTES) {
            flush();
        }
    }

    private void flush() {
        if (buffer.length == 0) {
            return;
        }
        try {
            stream.write(buffer.bytes, buffer.length);
        } catch (SQLException e) {
            throw failure("streaming rows", e);
        }
        buffer.reset();
        if (write.faultAt(WriteOptions.Fault.HALT_MID_COPY, partition, attempt)) {
            Runtime.getRuntime().halt(137); // an executor lost with a COPY in flight
        }
    }

    @Override
    public WriterCommitMessage commit() throws IOException {
        if (skip) {
            rollbackQuietly();
            Log.fine("partition %d of write %s is already committed; skipped %d rows", partition, write.writeId, rows);
            return new Committed(partition, 0, true);
        }
        flush();
        boolean duplicate = false;
        long copied;
        try {
            copied = stream.end();
            if (write.faultAt(WriteOptions.Fault.FAIL_BEFORE_COMMIT, partition, attempt)) {
                throw new WriteFailure("lakebase: injected fault " + WriteOptions.Fault.FAIL_BEFORE_COMMIT.name
                        + " in partition " + partition, null, null);
            }
            duplicate = commitWithMarker(copied);
        } catch (SQLException e) {
            throw failure("committing", e);
        }
        if (write.faultAt(WriteOptions.Fault.FAIL_AFTER_COMMIT, partition, attempt)) {
            throw new WriteFailure("lakebase: injected fault " + WriteOptions.Fault.FAIL_AFTER_COMMIT.name
                    + " in partition " + partition + " (its rows are committed)", null, null);
        }
        if (write.faultAt(WriteOptions.Fault.HALT_AFTER_COMMIT, partition, attempt)) {
            Runtime.getRuntime().halt(137); // an executor lost after its commit, as with an OOM kill
        }
        return new Committed(partition, duplicate ? 0 : copied, duplicate);
    }

    /** Commits the COPY with this partition's marker; true when another attempt had committed it first. */
    private boolean commitWithMarker(long copied) throws SQLException {
        if (write.commits == null) {
            connection.commit(); // no commit log: at-least-once, the benchmark's baseline
            return false;
        }
        try (PreparedStatement st = connection.prepareStatement("INSERT INTO " + write.commits
                + " (target, write_id, part, parts, rows, attempt) VALUES (?, ?, ?, ?, ?, ?)")) {
            st.setString(1, write.table);
            st.setString(2, write.writeId);
            st.setInt(3, partition);
            st.setInt(4, numPartitions);
            st.setLong(5, copied);
            st.setInt(6, attempt);
            st.executeUpdate();
            connection.commit();
            return false;
        } catch (SQLException e) {
            if (!"23505".equals(e.getSQLState())) {
                throw e;
            }
            // Another attempt of this partition committed first (speculation, or a retry racing a slow commit).
            rollbackQuietly();
            return true;
        }
    }

    @Override
    public void abort() {
        if (stream != null) {
            stream.cancel();
        }
        rollbackQuietly();
    }

    @Override
    public void close() {
        closeQuietly(connection);
    }

    private void rollbackQuietly() {
        try {
            connection.rollback();
        } catch (SQLException e) {
            Log.fine("rollback of partition %d failed (SQLSTATE %s); closing the connection discards it", partition,
                    e.getSQLState());
        }
    }

    private static void closeQuietly(Connection conn) {
        if (conn == null) {
            return;
        }
        try {
            conn.close();
        } catch (SQLException e) {
            Log.fine("closing a COPY connection failed (SQLSTATE %s)", e.getSQLState());
        }
    }

    /** A database error with the partition, and the row and column when Postgres names them (a COPY's CONTEXT). */
    private WriteFailure failure(String doing, SQLException e) {
        if (e instanceof SparkThrowable && !(e.getCause() instanceof SQLException)) {
            return new WriteFailure(e.getMessage(), e.getSQLState(), e); // our own login errors already say it all
        }
        String message = String.valueOf(e.getMessage());
        StringBuilder where = new StringBuilder("partition ").append(partition);
        Matcher m = COPY_WHERE.matcher(message);
        String line = null;
        String column = null;
        while (m.find()) { // the last one: COPY's own context comes after any the value's parser added
            line = m.group(1);
            column = m.group(2);
        }
        if (line != null) {
            where.append(", row ").append(line);
            if (column != null) {
                where.append(", column '").append(column.trim()).append('\'');
            }
        }
        return new WriteFailure("lakebase: writing into " + write.table + " on " + options.hosts() + " failed while "
                + doing + " (" + where + "; SQLSTATE " + e.getSQLState() + "): " + message
                + "; nothing of this partition was committed", e.getSQLState(), e);
    }

    /** What a committed (or skipped) partition reports to the driver. */
    static final class Committed implements WriterCommitMessage {
        private static final long serialVersionUID = 1L;
        final int partition;
        final long rows;
        final boolean skipped;

        Committed(int partition, long rows, boolean skipped) {
            this.partition = partition;
            this.rows = rows;
            this.skipped = skipped;
        }
    }

    /** A failed partition; a SparkThrowable so Spark 4 shows its message instead of a generic one. */
    static final class WriteFailure extends RuntimeException implements LakebaseException.Condition {
        private static final long serialVersionUID = 1L;
        private final String sqlState;

        WriteFailure(String message, String sqlState, Throwable cause) {
            super(message, cause);
            this.sqlState = sqlState;
        }

        @Override
        public String condition() {
            return LakebaseException.WRITE_FAILED;
        }

        @Override
        public String getSqlState() {
            return sqlState;
        }
    }
}
