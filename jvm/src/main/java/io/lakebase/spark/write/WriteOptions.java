package io.lakebase.spark.write;

import io.lakebase.spark.core.LakebaseException;
import io.lakebase.spark.core.QuotedNames;
import java.io.Serializable;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The COPY writer's own options ({@code lakebase.write.*}), set by {@code lakebase_spark.write}. Table and column
 * names arrive already quoted by the Python side; they are checked to be nothing but quoted identifiers, so no
 * option can smuggle SQL into the statements built from them.
 */
final class WriteOptions implements Serializable {

    private static final long serialVersionUID = 1L;

    static final String TABLE = "lakebase.write.table";
    static final String COLUMNS = "lakebase.write.columns";
    /** What each written column is in Postgres (JSON, see {@link ColumnTarget}); absent: each value in its own type. */
    static final String COLUMN_TYPES = "lakebase.write.column.types";
    static final String WRITE_ID = "lakebase.write.id";
    static final String COMMITS = "lakebase.write.commits";
    static final String FAULT = "lakebase.write.fault";
    static final String FAULT_PARTITIONS = "lakebase.write.fault.partitions";
    /** Characters (code points) a write id may have (Python's MAX_WRITE_ID). */
    static final int MAX_WRITE_ID = 512;

    /** Test-only fault injection points (documented in the README); off unless {@link #FAULT} is set. */
    enum Fault {
        /** The task throws right after its transaction committed: Spark retries a partition that is done. */
        FAIL_AFTER_COMMIT("fail-after-commit"),
        /** The executor JVM halts right after the commit: Spark loses the executor and reruns its tasks. */
        HALT_AFTER_COMMIT("halt-after-commit"),
        /** The task throws before it commits: nothing of the partition is visible, Spark retries it. */
        FAIL_BEFORE_COMMIT("fail-before-commit"),
        /** The executor JVM halts with rows streamed but not committed: Postgres rolls the COPY back. */
        HALT_MID_COPY("halt-mid-copy");

        final String name;

        Fault(String name) {
            this.name = name;
        }
    }


    final String table;
    final String columns;
    /** The target column of each DataFrame column, in order, or null. */
    final ColumnTarget[] columnTypes;
    final String writeId;
    /** The commit log, or null: plain at-least-once COPY (only the benchmark writes without one). */
    final String commits;
    final Fault fault;
    final Set<Integer> faultPartitions;

    private WriteOptions(Map<String, String> options) {
        this.table = quoted(options, TABLE, QuotedNames.QUALIFIED);
        this.columns = quoted(options, COLUMNS, QuotedNames.COLUMN_LIST);
        String types = options.get(COLUMN_TYPES);
        this.columnTypes = types == null ? null : ColumnTarget.parseAll(types, COLUMN_TYPES);
        this.commits = options.containsKey(COMMITS) ? quoted(options, COMMITS, QuotedNames.QUALIFIED) : null;
        String id = options.get(WRITE_ID);
        String problem = writeIdProblem(id);
        if (problem != null) {
            throw new LakebaseException.Options("lakebase: option " + WRITE_ID + " " + problem + ": a write id is 1 to "
                    + MAX_WRITE_ID + " characters without NUL; write with lakebase_spark.write(...)");
        }
        this.writeId = id;
        this.fault = parseFault(options.get(FAULT));
        this.faultPartitions = parsePartitions(options.get(FAULT_PARTITIONS));
    }

    /**
     * Why {@code id} is not a valid write id, or null. The rule is Python's ({@code writing/write_ids.py}): 1 to
     * {@link #MAX_WRITE_ID} characters counted as Unicode code points (an emoji is one, not two UTF-16 units), no NUL,
     * no unpaired surrogate; tests/test_contract.py runs both on the same ids.
     */
    static String writeIdProblem(String id) {
        if (id == null || id.isEmpty()) {
            return "must be a non-empty string";
        }
        int characters = id.codePointCount(0, id.length());
        if (characters > MAX_WRITE_ID) {
            return "has " + characters + " characters, more than " + MAX_WRITE_ID;
        }
        for (int i = 0; i < id.length(); i++) {
            char c = id.charAt(i);
            if (c == 0) {
                return "contains a NUL character";
            }
            if (Character.isHighSurrogate(c) && i + 1 < id.length() && Character.isLowSurrogate(id.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                return "is not valid Unicode (a lone surrogate)";
            }
        }
        return null;
    }

    /** Parses the writer keys of a lower-cased option map. */
    static WriteOptions parse(Map<String, String> options) {
        return new WriteOptions(options);
    }

    /** The COPY statement: text format, the columns in the DataFrame's order. */
    String copySql() {
        return "COPY " + table + " (" + columns + ") FROM STDIN";
    }

    boolean faultAt(Fault point, int partition, int attempt) {
        return fault == point && attempt == 0 && (faultPartitions.isEmpty() || faultPartitions.contains(partition));
    }

    private static String quoted(Map<String, String> options, String key, Pattern pattern) {
        String value = options.get(key);
        if (value == null || !pattern.matcher(value).matches()) {
            throw new LakebaseException.Options("lakebase: option " + key + " must hold quoted identifiers as "
                    + "lakebase_spark.write(...) sets them; write with that function rather than setting it by hand");
        }
        return value;
    }

    private static Fault parseFault(String raw) {
        if (raw == null || raw.trim().isEmpty()) {
            return null;
        }
        for (Fault f : Fault.values()) {
            if (f.name.equals(raw.trim().toLowerCase(Locale.ROOT))) {
                return f;
            }
        }
        throw new LakebaseException.Options("lakebase: " + FAULT + "='" + raw + "' is not a fault point; use one of "
                + "fail-after-commit, halt-after-commit, fail-before-commit, halt-mid-copy (tests only)");
    }

    private static Set<Integer> parsePartitions(String raw) {
        if (raw == null || raw.trim().isEmpty()) {
            return Collections.emptySet();
        }
        Set<Integer> out = new HashSet<>();
        try {
            for (String part : Arrays.asList(raw.split(","))) {
                out.add(Integer.parseInt(part.trim()));
            }
        } catch (NumberFormatException e) {
            throw new LakebaseException.Options("lakebase: " + FAULT_PARTITIONS + "='" + raw + "' must be partition "
                    + "numbers separated by commas");
        }
        return out;
    }
}
