package io.lakebase.spark;

import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.zone.ZoneRules;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.BinaryType;
import org.apache.spark.sql.types.BooleanType;
import org.apache.spark.sql.types.ByteType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DateType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.DoubleType;
import org.apache.spark.sql.types.FloatType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StringType;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampNTZType;
import org.apache.spark.sql.types.TimestampType;

/**
 * Encodes Spark rows as Postgres {@code COPY ... FROM STDIN} text format (tab-separated, {@code \N} for NULL,
 * backslash escapes), straight from Spark's internal representation into a byte buffer.
 *
 * <p>Text won over binary by measurement (see bench/results.md): the server's per-row work (heap, index, WAL)
 * dominates, and text needs no per-type OIDs, so every column type Postgres can parse (json, uuid, enums, arrays)
 * goes through the same path. Timestamps are written with this JVM's UTC offset, as Spark's own JDBC writer does,
 * so {@code timestamptz} gets the exact instant and {@code timestamp} the wall clock Spark's JDBC reader expects.
 */
final class CopyTextEncoder {

    /** One column's encoder; {@code out} receives COPY-escaped bytes. */
    private interface Field {
        void encode(SpecializedGetters row, int ordinal, Buffer out);
    }

    private static final byte[] NULL = {'\\', 'N'};
    private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

    private final Field[] fields;
    private final String[] names;
    private final ZoneRules zone;
    /** Scratch space for array literals, which are escaped twice (array syntax, then COPY). */
    private final Buffer scratch = new Buffer(256);

    CopyTextEncoder(StructType schema, ZoneId zone) {
        StructField[] structFields = schema.fields();
        this.fields = new Field[structFields.length];
        this.names = new String[structFields.length];
        this.zone = zone.getRules();
        for (int i = 0; i < structFields.length; i++) {
            names[i] = structFields[i].name();
            fields[i] = field(structFields[i].dataType(), names[i]);
        }
    }

    /** Appends one row and its newline to {@code out}. */
    void encode(InternalRow row, Buffer out) {
        for (int i = 0; i < fields.length; i++) {
            if (i > 0) {
                out.put((byte) '\t');
            }
            if (row.isNullAt(i)) {
                out.put(NULL);
            } else {
                fields[i].encode(row, i, out);
            }
        }
        out.put((byte) '\n');
    }

    /** Throws a message naming the column for types COPY text cannot carry from Spark (maps, structs, ...). */
    static void checkSupported(StructType schema) {
        new CopyTextEncoder(schema, ZoneOffset.UTC);
    }

    private Field field(DataType type, String column) {
        if (type instanceof BooleanType) {
            return (row, i, out) -> out.put(row.getBoolean(i) ? (byte) 't' : (byte) 'f');
        }
        if (type instanceof ByteType) {
            return (row, i, out) -> out.putLong(row.getByte(i));
        }
        if (type instanceof ShortType) {
            return (row, i, out) -> out.putLong(row.getShort(i));
        }
        if (type instanceof IntegerType) {
            return (row, i, out) -> out.putLong(row.getInt(i));
        }
        if (type instanceof LongType) {
            return (row, i, out) -> out.putLong(row.getLong(i));
        }
        if (type instanceof FloatType) {
            // Float.toString gives NaN, Infinity, -Infinity and 1.0E10, all of which float4in parses.
            return (row, i, out) -> out.putAscii(Float.toString(row.getFloat(i)));
        }
        if (type instanceof DoubleType) {
            return (row, i, out) -> out.putAscii(Double.toString(row.getDouble(i)));
        }
        if (type instanceof DecimalType) {
            DecimalType d = (DecimalType) type;
            int precision = d.precision();
            int scale = d.scale();
            return (row, i, out) -> out.putAscii(row.getDecimal(i, precision, scale).toJavaBigDecimal().toPlainString());
        }
        if (type instanceof StringType) {
            return (row, i, out) -> {
                byte[] utf8 = row.getUTF8String(i).getBytes();
                checkNoNul(utf8, column);
                out.putEscaped(utf8, 0, utf8.length);
            };
        }
        if (type instanceof BinaryType) {
            // bytea hex input, \x..., with the backslash escaped for COPY.
            return (row, i, out) -> putHexBytea(row.getBinary(i), out, true);
        }
        if (type instanceof DateType) {
            return (row, i, out) -> putDate(LocalDate.ofEpochDay(row.getInt(i)), out);
        }
        if (type instanceof TimestampType) {
            return (row, i, out) -> putTimestamp(row.getLong(i), true, out);
        }
        if (type instanceof TimestampNTZType) {
            return (row, i, out) -> putTimestamp(row.getLong(i), false, out);
        }
        if (type instanceof ArrayType) {
            DataType element = ((ArrayType) type).elementType();
            Element encoder = element(element, column);
            // Spark has no type for multi-dimensional arrays: a nested array is an array of arrays, which Postgres
            // takes as one multi-dimensional array literal when it is rectangular.
            return (row, i, out) -> {
                scratch.reset();
                putArray(row.getArray(i), encoder, scratch);
                out.putEscaped(scratch.bytes, 0, scratch.length);
            };
        }
        throw new LakebaseException.Options("lakebase: column '" + column + "' has type " + type.simpleString()
                + ", which the COPY writer cannot write: cast it first (maps and structs: to_json(col) into a json "
                + "or jsonb column)");
    }

    /** An array element in array-literal syntax (not yet COPY-escaped). */
    private interface Element {
        void encode(ArrayData array, int index, Buffer out);
    }

    private Element element(DataType type, String column) {
        if (type instanceof ArrayType) {
            Element inner = element(((ArrayType) type).elementType(), column);
            return (array, index, out) -> putArray(array.getArray(index), inner, out);
        }
        if (type instanceof StringType) {
            return (array, index, out) -> {
                byte[] utf8 = array.getUTF8String(index).getBytes();
                checkNoNul(utf8, column);
                putQuoted(utf8, out);
            };
        }
        if (type instanceof BinaryType) {
            return (array, index, out) -> {
                out.put((byte) '"');
                putHexBytea(array.getBinary(index), out, true); // the backslash is escaped inside quotes
                out.put((byte) '"');
            };
        }
        if (type instanceof DateType || type instanceof TimestampType || type instanceof TimestampNTZType) {
            // Dates and timestamps may contain spaces (and " BC"): quote them.
            Field scalar = field(type, column);
            return (array, index, out) -> {
                out.put((byte) '"');
                scalar.encode(array, index, out);
                out.put((byte) '"');
            };
        }
        Field scalar = field(type, column); // numbers and booleans need no quotes
        return scalar::encode;
    }

    private static void putArray(ArrayData array, Element element, Buffer out) {
        out.put((byte) '{');
        int n = array.numElements();
        for (int j = 0; j < n; j++) {
            if (j > 0) {
                out.put((byte) ',');
            }
            if (array.isNullAt(j)) {
                out.putAscii("NULL");
            } else {
                element.encode(array, j, out);
            }
        }
        out.put((byte) '}');
    }

    /** An array element in double quotes, with {@code "} and {@code \} backslash-escaped (array syntax). */
    private static void putQuoted(byte[] utf8, Buffer out) {
        out.put((byte) '"');
        for (byte b : utf8) {
            if (b == '"' || b == '\\') {
                out.put((byte) '\\');
            }
            out.put(b);
        }
        out.put((byte) '"');
    }

    private static void putHexBytea(byte[] bytes, Buffer out, boolean escapeBackslash) {
        if (escapeBackslash) {
            out.put((byte) '\\');
        }
        out.put((byte) '\\');
        out.put((byte) 'x');
        out.ensure(bytes.length * 2);
        for (byte b : bytes) {
            out.bytes[out.length++] = HEX[(b >> 4) & 0xf];
            out.bytes[out.length++] = HEX[b & 0xf];
        }
    }

    private static void checkNoNul(byte[] utf8, String column) {
        for (byte b : utf8) {
            if (b == 0) {
                throw new BadValue(column, "contains a NUL character (\\u0000), which Postgres text cannot store: "
                        + "remove it, e.g. regexp_replace(col, '\\\\x00', '')");
            }
        }
    }

    /** A value Postgres cannot take, found before it is sent; the writer adds the row's position. */
    static final class BadValue extends RuntimeException {
        private static final long serialVersionUID = 1L;
        final String column;

        BadValue(String column, String problem) {
            super("column '" + column + "' " + problem);
            this.column = column;
        }
    }

    private static void putDate(LocalDate date, Buffer out) {
        putYmd(date.getYear(), date.getMonthValue(), date.getDayOfMonth(), out);
        if (date.getYear() <= 0) {
            out.putAscii(" BC");
        }
    }

    private static void putYmd(int isoYear, int month, int day, Buffer out) {
        // ISO year 0 is 1 BC; Postgres wants the positive year and a " BC" suffix after the whole value.
        putPadded(isoYear <= 0 ? 1 - isoYear : isoYear, 4, out);
        out.put((byte) '-');
        putPadded(month, 2, out);
        out.put((byte) '-');
        putPadded(day, 2, out);
    }

    private void putTimestamp(long micros, boolean withOffset, Buffer out) {
        long seconds = Math.floorDiv(micros, 1_000_000L);
        int fraction = (int) Math.floorMod(micros, 1_000_000L);
        ZoneOffset offset = withOffset ? zone.getOffset(java.time.Instant.ofEpochSecond(seconds)) : ZoneOffset.UTC;
        LocalDateTime t = LocalDateTime.ofEpochSecond(seconds, 0, offset);
        putYmd(t.getYear(), t.getMonthValue(), t.getDayOfMonth(), out);
        out.put((byte) ' ');
        putPadded(t.getHour(), 2, out);
        out.put((byte) ':');
        putPadded(t.getMinute(), 2, out);
        out.put((byte) ':');
        putPadded(t.getSecond(), 2, out);
        if (fraction != 0) {
            out.put((byte) '.');
            putPadded(fraction, 6, out);
        }
        if (withOffset) {
            int total = offset.getTotalSeconds();
            out.put(total < 0 ? (byte) '-' : (byte) '+');
            total = Math.abs(total);
            putPadded(total / 3600, 2, out);
            out.put((byte) ':');
            putPadded(total / 60 % 60, 2, out);
            if (total % 60 != 0) {
                out.put((byte) ':');
                putPadded(total % 60, 2, out);
            }
        }
        if (t.getYear() <= 0) {
            out.putAscii(" BC");
        }
    }

    private static void putPadded(int value, int width, Buffer out) {
        String digits = Integer.toString(value);
        for (int k = digits.length(); k < width; k++) {
            out.put((byte) '0');
        }
        out.putAscii(digits);
    }

    /** A growable byte buffer; the writer flushes it to the COPY stream whenever it passes a threshold. */
    static final class Buffer {
        byte[] bytes;
        int length;

        Buffer(int capacity) {
            bytes = new byte[capacity];
        }

        void reset() {
            length = 0;
        }

        void ensure(int extra) {
            if (length + extra > bytes.length) {
                bytes = java.util.Arrays.copyOf(bytes, Math.max(bytes.length * 2, length + extra));
            }
        }

        void put(byte b) {
            ensure(1);
            bytes[length++] = b;
        }

        void put(byte[] b) {
            ensure(b.length);
            System.arraycopy(b, 0, bytes, length, b.length);
            length += b.length;
        }

        /** ASCII only (numbers, keywords): one byte per char. */
        void putAscii(String s) {
            int n = s.length();
            ensure(n);
            for (int k = 0; k < n; k++) {
                bytes[length++] = (byte) s.charAt(k);
            }
        }

        void putLong(long v) {
            if (v >= 0 && v < 10) {
                put((byte) ('0' + v));
            } else {
                putAscii(Long.toString(v));
            }
        }

        /** Bytes with COPY text's escapes: backslash, newline, carriage return and tab. */
        void putEscaped(byte[] src, int from, int to) {
            ensure(to - from);
            for (int k = from; k < to; k++) {
                byte b = src[k];
                byte escaped;
                switch (b) {
                    case '\\': escaped = '\\'; break;
                    case '\n': escaped = 'n'; break;
                    case '\r': escaped = 'r'; break;
                    case '\t': escaped = 't'; break;
                    default:
                        if (length == bytes.length) {
                            ensure(1 + to - k);
                        }
                        bytes[length++] = b;
                        continue;
                }
                ensure(2 + to - k);
                bytes[length++] = '\\';
                bytes[length++] = escaped;
            }
        }
    }
}
