package io.lakebase.spark.write;

import io.lakebase.spark.core.LakebaseException;
import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.ZoneId;
import java.time.ZoneOffset;
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
 * goes through the same path.
 *
 * <p>What lands in each column is what Spark's own JDBC writer makes Postgres store for the same value
 * ({@link ColumnTarget}, checked by tests/writing/test_types.py against Spark's writer): values of the column's own
 * type are written as they are; a value of another type is converted as Postgres converts Spark's parameter (pgjdbc
 * binds floats as real, decimals as numeric...). Dates and timestamps are written as pgjdbc writes them (it sends them
 * untyped): {@code 2024-01-01 12:34:56.5+00} with this JVM's UTC offset, so {@code timestamptz} gets the exact instant,
 * {@code timestamp} the wall clock Spark's JDBC reader expects, and a text column the very same string.
 */
public final class CopyTextEncoder {

    /** One column's encoder; {@code out} receives COPY-escaped bytes. */
    private interface Field {
        void encode(SpecializedGetters row, int ordinal, CopyBuffer out);
    }

    private static final byte[] NULL = {'\\', 'N'};
    private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

    private final Field[] fields;
    private final String[] names;
    private final DateTimeText times;
    /** Scratch space for array literals, which are escaped twice (array syntax, then COPY). */
    private final CopyBuffer scratch = new CopyBuffer(256);

    /** An encoder writing each value in its own type's text (no target columns known). */
    CopyTextEncoder(StructType schema, ZoneId zone) {
        this(schema, null, zone);
    }

    /** {@code targets}: the target column of each field, in order; null when unknown. */
    CopyTextEncoder(StructType schema, ColumnTarget[] targets, ZoneId zone) {
        StructField[] structFields = schema.fields();
        if (targets != null && targets.length != structFields.length) {
            throw new LakebaseException.Options("lakebase: " + targets.length + " column types for "
                    + structFields.length + " columns; write with lakebase_spark.write(...)");
        }
        this.fields = new Field[structFields.length];
        this.names = new String[structFields.length];
        this.times = new DateTimeText(zone);
        for (int i = 0; i < structFields.length; i++) {
            names[i] = structFields[i].name();
            fields[i] = field(structFields[i].dataType(), targets == null ? null : targets[i], names[i]);
        }
    }

    /** Appends one row and its newline to {@code out}. */
    void encode(InternalRow row, CopyBuffer out) {
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
    public static void checkSupported(StructType schema) {
        new CopyTextEncoder(schema, ZoneOffset.UTC);
    }

    private Field field(DataType type, ColumnTarget target, String column) {
        if (target != null && target.array && !(type instanceof ArrayType)) {
            target = target.element(); // the up-front check refused this pair; let Postgres name the problem
        }
        if (type instanceof BooleanType) {
            if (target != null && target.isText()) {
                return (row, i, out) -> out.putAscii(row.getBoolean(i) ? "true" : "false");
            }
            return (row, i, out) -> out.put(row.getBoolean(i) ? (byte) 't' : (byte) 'f');
        }
        // pgjdbc binds Spark's integers as int2/int4, whose cast to an OID alias (regclass...) reads the bits unsigned.
        boolean unsigned = target != null && target.isOidAlias();
        if (type instanceof ByteType) {
            return unsigned ? (row, i, out) -> out.putAscii(Integer.toUnsignedString(row.getByte(i)))
                    : (row, i, out) -> out.putLong(row.getByte(i));
        }
        if (type instanceof ShortType) {
            return unsigned ? (row, i, out) -> out.putAscii(Integer.toUnsignedString(row.getShort(i)))
                    : (row, i, out) -> out.putLong(row.getShort(i));
        }
        if (type instanceof IntegerType) {
            return unsigned ? (row, i, out) -> out.putAscii(Integer.toUnsignedString(row.getInt(i)))
                    : (row, i, out) -> out.putLong(row.getInt(i));
        }
        if (type instanceof LongType) {
            return (row, i, out) -> out.putLong(row.getLong(i));
        }
        if (type instanceof FloatType) {
            return floatField(target);
        }
        if (type instanceof DoubleType) {
            return doubleField(target);
        }
        if (type instanceof DecimalType) {
            DecimalType d = (DecimalType) type;
            int precision = d.precision();
            int scale = d.scale();
            if (target != null && target.isInteger()) {
                return (row, i, out) -> out.putAscii(PgText.integer(row.getDecimal(i, precision, scale)
                        .toJavaBigDecimal()));
            }
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
            // bytea hex input, \x..., with the backslash escaped for COPY; a text column takes the same string
            // (bytea's output).
            return (row, i, out) -> putHexBytea(row.getBinary(i), out, true);
        }
        if (type instanceof DateType) {
            return (row, i, out) -> times.putJdbcDate(row.getInt(i), out);
        }
        if (type instanceof TimestampType) {
            return (row, i, out) -> times.putJdbcTimestamp(row.getLong(i), false, out);
        }
        if (type instanceof TimestampNTZType) {
            return (row, i, out) -> times.putJdbcTimestamp(row.getLong(i), true, out);
        }
        if (type instanceof ArrayType && target != null && !target.array) {
            // Spark binds the array as elementtype[]; a text column takes it as array_out prints it.
            Element encoder = printed(((ArrayType) type).elementType(), column);
            return (row, i, out) -> {
                scratch.reset();
                putArray(row.getArray(i), encoder, (byte) ',', scratch);
                out.putEscaped(scratch.bytes, 0, scratch.length);
            };
        }
        if (type instanceof ArrayType) {
            DataType elementType = ((ArrayType) type).elementType();
            ColumnTarget elementTarget = target == null ? null : target.element();
            Element encoder = element(elementType, elementTarget, column);
            byte delimiter = elementTarget == null ? (byte) ',' : (byte) elementTarget.delimiter;
            // Spark has no type for multi-dimensional arrays: a nested array is an array of arrays, which Postgres
            // takes as one multi-dimensional array literal when it is rectangular.
            return (row, i, out) -> {
                scratch.reset();
                putArray(row.getArray(i), encoder, delimiter, scratch);
                out.putEscaped(scratch.bytes, 0, scratch.length);
            };
        }
        throw new LakebaseException.Options("lakebase: column '" + column + "' has type " + type.simpleString()
                + ", which the COPY writer cannot write: cast it first (maps and structs: to_json(col) into a json "
                + "or jsonb column)");
    }

    /** A real, as pgjdbc binds it (float4), converted the way Postgres converts a float4 into the column's type. */
    private static Field floatField(ColumnTarget target) {
        if (target == null || target.is("float4")) {
            // Float.toString gives NaN, Infinity, -Infinity and 1.0E10, all of which float4in parses.
            return (row, i, out) -> out.putAscii(Float.toString(row.getFloat(i)));
        }
        if (target.is("float8")) {
            return (row, i, out) -> out.putAscii(Double.toString(row.getFloat(i))); // exact widening
        }
        if (target.is("numeric")) {
            return (row, i, out) -> out.putAscii(PgText.numeric(row.getFloat(i), 6));
        }
        if (target.isInteger()) {
            return (row, i, out) -> {
                float f = row.getFloat(i);
                String rounded = PgText.integer(f);
                out.putAscii(rounded != null ? rounded : Float.toString(f)); // Postgres refuses it either way
            };
        }
        if (target.isText()) {
            return (row, i, out) -> out.putAscii(PgText.shortest(row.getFloat(i)));
        }
        return (row, i, out) -> out.putAscii(Float.toString(row.getFloat(i)));
    }

    /** A double precision, converted the way Postgres converts a float8 into the column's type. */
    private static Field doubleField(ColumnTarget target) {
        if (target == null || target.is("float8")) {
            return (row, i, out) -> out.putAscii(Double.toString(row.getDouble(i)));
        }
        if (target.is("float4")) {
            return (row, i, out) -> out.putAscii(narrow(row.getDouble(i)));
        }
        if (target.is("numeric")) {
            return (row, i, out) -> out.putAscii(PgText.numeric(row.getDouble(i), 15));
        }
        if (target.isInteger()) {
            return (row, i, out) -> {
                double d = row.getDouble(i);
                String rounded = PgText.integer(d);
                out.putAscii(rounded != null ? rounded : Double.toString(d));
            };
        }
        if (target.isText()) {
            return (row, i, out) -> out.putAscii(PgText.shortest(row.getDouble(i)));
        }
        return (row, i, out) -> out.putAscii(Double.toString(row.getDouble(i)));
    }

    /** float8 to float4 as Postgres' dtof: rounded to nearest (even); out of range stays out of range, refused. */
    private static String narrow(double d) {
        float f = (float) d;
        if ((Float.isInfinite(f) && !Double.isInfinite(d)) || (f == 0 && d != 0)) {
            return Double.toString(d); // float4in refuses it, as dtof does: overflow or underflow
        }
        return Float.toString(f);
    }

    /** An array element in array-literal syntax (not yet COPY-escaped). */
    private interface Element {
        void encode(ArrayData array, int index, CopyBuffer out);
    }

    private Element element(DataType type, ColumnTarget target, String column) {
        if (type instanceof ArrayType) {
            Element inner = element(((ArrayType) type).elementType(), target, column);
            byte delimiter = target == null ? (byte) ',' : (byte) target.delimiter;
            return (array, index, out) -> putArray(array.getArray(index), inner, delimiter, out);
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
        if (type instanceof DateType) {
            // Spark binds an array of dates as date[]: each element reaches the column as a date, not as pgjdbc's
            // untyped literal.
            return (array, index, out) -> {
                out.put((byte) '"');
                DateTimeText.putDate(LocalDate.ofEpochDay(array.getInt(index)), out);
                out.put((byte) '"');
            };
        }
        if (type instanceof TimestampType || type instanceof TimestampNTZType) {
            boolean withOffset = type instanceof TimestampType;
            return (array, index, out) -> {
                out.put((byte) '"');
                times.putTimestamp(array.getLong(index), withOffset, out);
                out.put((byte) '"');
            };
        }
        Field scalar = field(type, target, column); // numbers and booleans need no quotes
        return scalar::encode;
    }

    /**
     * An element as Postgres' array_out prints it for an array of Spark's bound element type: each element's own
     * output (booleans t/f, floats shortest, dates ISO, bytea \x...), quoted only when array_out quotes it.
     */
    private Element printed(DataType type, String column) {
        if (type instanceof ArrayType) {
            Element inner = printed(((ArrayType) type).elementType(), column);
            return (array, index, out) -> putArray(array.getArray(index), inner, (byte) ',', out);
        }
        if (type instanceof StringType) {
            return (array, index, out) -> {
                byte[] utf8 = array.getUTF8String(index).getBytes();
                checkNoNul(utf8, column);
                putPrinted(utf8, out);
            };
        }
        if (type instanceof BooleanType) {
            return (array, index, out) -> out.put(array.getBoolean(index) ? (byte) 't' : (byte) 'f');
        }
        if (type instanceof FloatType) {
            return (array, index, out) -> out.putAscii(PgText.shortest(array.getFloat(index)));
        }
        if (type instanceof DoubleType) {
            return (array, index, out) -> out.putAscii(PgText.shortest(array.getDouble(index)));
        }
        if (type instanceof BinaryType) {
            return (array, index, out) -> {
                CopyBuffer hex = new CopyBuffer(2 + array.getBinary(index).length * 2);
                putHexBytea(array.getBinary(index), hex, false);
                putPrinted(java.util.Arrays.copyOf(hex.bytes, hex.length), out);
            };
        }
        if (type instanceof DateType) {
            return (array, index, out) -> {
                CopyBuffer date = new CopyBuffer(16);
                DateTimeText.putDate(LocalDate.ofEpochDay(array.getInt(index)), date);
                putPrinted(java.util.Arrays.copyOf(date.bytes, date.length), out);
            };
        }
        Element element = element(type, null, column); // integers and decimals print as they are written
        return element;
    }

    /** array_out's quoting: empty, NULL, or holding a quote, backslash, brace, comma or white space. */
    private static void putPrinted(byte[] utf8, CopyBuffer out) {
        boolean quote = utf8.length == 0 || (utf8.length == 4 && new String(utf8, StandardCharsets.US_ASCII)
                .equalsIgnoreCase("NULL"));
        for (byte b : utf8) {
            if (b == '"' || b == '\\' || b == '{' || b == '}' || b == ',' || b == ' ' || b == '\t' || b == '\n'
                    || b == '\r' || b == 0x0b || b == '\f') {
                quote = true;
                break;
            }
        }
        if (quote) {
            putQuoted(utf8, out);
        } else {
            out.put(utf8);
        }
    }

    private static void putArray(ArrayData array, Element element, byte delimiter, CopyBuffer out) {
        out.put((byte) '{');
        int n = array.numElements();
        for (int j = 0; j < n; j++) {
            if (j > 0) {
                out.put(delimiter);
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
    private static void putQuoted(byte[] utf8, CopyBuffer out) {
        out.put((byte) '"');
        for (byte b : utf8) {
            if (b == '"' || b == '\\') {
                out.put((byte) '\\');
            }
            out.put(b);
        }
        out.put((byte) '"');
    }

    private static void putHexBytea(byte[] bytes, CopyBuffer out, boolean escapeBackslash) {
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
}
