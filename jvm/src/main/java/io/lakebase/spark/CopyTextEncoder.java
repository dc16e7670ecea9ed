package io.lakebase.spark;

import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.zone.ZoneRules;
import java.util.Calendar;
import java.util.GregorianCalendar;
import java.util.TimeZone;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.SpecializedGetters;
import org.apache.spark.sql.catalyst.util.ArrayData;
import org.apache.spark.sql.catalyst.util.DateTimeUtils;
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
final class CopyTextEncoder {

    /** One column's encoder; {@code out} receives COPY-escaped bytes. */
    private interface Field {
        void encode(SpecializedGetters row, int ordinal, Buffer out);
    }

    private static final byte[] NULL = {'\\', 'N'};
    private static final byte[] HEX = "0123456789abcdef".getBytes(StandardCharsets.US_ASCII);

    private final Field[] fields;
    private final String[] names;
    private final ZoneId zoneId;
    private final ZoneRules zone;
    /** pgjdbc's default calendar: Gregorian with the Julian calendar before 1582, in this JVM's zone. */
    private final Calendar calendar = new GregorianCalendar(TimeZone.getDefault());
    /** Scratch space for array literals, which are escaped twice (array syntax, then COPY). */
    private final Buffer scratch = new Buffer(256);

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
        this.zoneId = zone;
        this.zone = zone.getRules();
        for (int i = 0; i < structFields.length; i++) {
            names[i] = structFields[i].name();
            fields[i] = field(structFields[i].dataType(), targets == null ? null : targets[i], names[i]);
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
            return (row, i, out) -> putJdbcDate(row.getInt(i), out);
        }
        if (type instanceof TimestampType) {
            return (row, i, out) -> putJdbcTimestamp(row.getLong(i), false, out);
        }
        if (type instanceof TimestampNTZType) {
            return (row, i, out) -> putJdbcTimestamp(row.getLong(i), true, out);
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
        void encode(ArrayData array, int index, Buffer out);
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
                putDate(LocalDate.ofEpochDay(array.getInt(index)), out);
                out.put((byte) '"');
            };
        }
        if (type instanceof TimestampType || type instanceof TimestampNTZType) {
            boolean withOffset = type instanceof TimestampType;
            return (array, index, out) -> {
                out.put((byte) '"');
                putTimestamp(array.getLong(index), withOffset, out);
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
                Buffer hex = new Buffer(2 + array.getBinary(index).length * 2);
                putHexBytea(array.getBinary(index), hex, false);
                putPrinted(java.util.Arrays.copyOf(hex.bytes, hex.length), out);
            };
        }
        if (type instanceof DateType) {
            return (array, index, out) -> {
                Buffer date = new Buffer(16);
                putDate(LocalDate.ofEpochDay(array.getInt(index)), date);
                putPrinted(java.util.Arrays.copyOf(date.bytes, date.length), out);
            };
        }
        Element element = element(type, null, column); // integers and decimals print as they are written
        return element;
    }

    /** array_out's quoting: empty, NULL, or holding a quote, backslash, brace, comma or white space. */
    private static void putPrinted(byte[] utf8, Buffer out) {
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

    private static void putArray(ArrayData array, Element element, byte delimiter, Buffer out) {
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

    /**
     * A date as Spark's JDBC writer sends it: Spark turns the day into a java.sql.Date
     * ({@code DateTimeUtils.toJavaDate}, rebased to the hybrid Julian calendar java.sql uses), and pgjdbc prints that
     * untyped in this JVM's zone: {@code 2024-01-01 +01}, with " BC" before the offset.
     */
    private void putJdbcDate(int epochDay, Buffer out) {
        java.sql.Date date = DateTimeUtils.toJavaDate(epochDay);
        calendar.setTimeInMillis(date.getTime());
        putCalendarDate(out);
        if (calendar.get(Calendar.ERA) == GregorianCalendar.BC) {
            out.putAscii(" BC");
        }
        out.put((byte) ' ');
        putCalendarOffset(out);
    }

    /**
     * A timestamp as Spark's JDBC writer sends it: a java.sql.Timestamp (for a timestamp without time zone, Spark's
     * dialect places the wall clock in this JVM's zone with {@code Timestamp.valueOf}), which pgjdbc prints untyped in
     * this JVM's zone: {@code 2024-01-01 12:34:56.5+01} (fraction without trailing zeros, the offset as
     * +HH[:MM[:SS]], then " BC").
     */
    private void putJdbcTimestamp(long micros, boolean wallClock, Buffer out) {
        if (micros >= FAST_FROM_MICROS) {
            putModernTimestamp(micros, wallClock, out);
            return;
        }
        java.sql.Timestamp t = wallClock ? java.sql.Timestamp.valueOf(DateTimeUtils.microsToLocalDateTime(micros))
                : DateTimeUtils.toJavaTimestamp(micros);
        calendar.setTimeInMillis(t.getTime());
        putCalendarDate(out);
        putClock(calendar.get(Calendar.HOUR_OF_DAY), calendar.get(Calendar.MINUTE), calendar.get(Calendar.SECOND),
                out);
        putFraction(t.getNanos() / 1000, out);
        putCalendarOffset(out);
        if (calendar.get(Calendar.ERA) == GregorianCalendar.BC) {
            out.putAscii(" BC");
        }
    }

    /**
     * From 1900 on (Gregorian, past the zones' local mean times) java.time gives the same fields and offsets as
     * java.util's calendar, several times faster: the same text without a Timestamp and a Calendar per value.
     */
    private static final long FAST_FROM_MICROS = -2_208_988_800_000_000L; // 1900-01-01T00:00:00Z

    private void putModernTimestamp(long micros, boolean wallClock, Buffer out) {
        long seconds = Math.floorDiv(micros, 1_000_000L);
        int fraction = (int) Math.floorMod(micros, 1_000_000L);
        LocalDateTime t;
        ZoneOffset offset;
        if (wallClock) {
            // Timestamp.valueOf: a wall clock in a gap moves forward by the gap, one in an overlap takes the
            // later (standard) offset.
            java.time.ZonedDateTime placed = java.time.ZonedDateTime.ofLocal(
                    LocalDateTime.ofEpochSecond(seconds, 0, ZoneOffset.UTC), zoneId, null).withLaterOffsetAtOverlap();
            t = placed.toLocalDateTime();
            offset = placed.getOffset();
        } else {
            offset = zone.getOffset(java.time.Instant.ofEpochSecond(seconds));
            t = LocalDateTime.ofEpochSecond(seconds, 0, offset);
        }
        putYmd(t.getYear(), t.getMonthValue(), t.getDayOfMonth(), out);
        putClock(t.getHour(), t.getMinute(), t.getSecond(), out);
        putFraction(fraction, out);
        putOffset(offset.getTotalSeconds(), out);
    }

    /** " HH:MM:SS", after a date. */
    private static void putClock(int hour, int minute, int second, Buffer out) {
        out.put((byte) ' ');
        putPadded(hour, 2, out);
        out.put((byte) ':');
        putPadded(minute, 2, out);
        out.put((byte) ':');
        putPadded(second, 2, out);
    }

    /** pgjdbc's fraction: microseconds without trailing zeros, nothing for none. */
    private static void putFraction(int micros, Buffer out) {
        if (micros == 0) {
            return;
        }
        int digits = 6;
        while (micros % 10 == 0) {
            micros /= 10;
            digits--;
        }
        out.put((byte) '.');
        putPadded(micros, digits, out);
    }

    /** pgjdbc's appendDate and, for dates, appendEra: yyyy-MM-dd of the hybrid calendar, " BC" when so. */
    private void putCalendarDate(Buffer out) {
        putPadded(calendar.get(Calendar.YEAR), 4, out);
        out.put((byte) '-');
        putPadded(calendar.get(Calendar.MONTH) + 1, 2, out);
        out.put((byte) '-');
        putPadded(calendar.get(Calendar.DAY_OF_MONTH), 2, out);
    }

    private void putCalendarOffset(Buffer out) {
        putOffset((calendar.get(Calendar.ZONE_OFFSET) + calendar.get(Calendar.DST_OFFSET)) / 1000, out);
    }

    /** pgjdbc's offset: +HH, +HH:MM or +HH:MM:SS. */
    private static void putOffset(int totalSeconds, Buffer out) {
        int total = totalSeconds;
        out.put(total < 0 ? (byte) '-' : (byte) '+');
        total = Math.abs(total);
        putPadded(total / 3600, 2, out);
        if (total % 3600 != 0) {
            out.put((byte) ':');
            putPadded(total / 60 % 60, 2, out);
            if (total % 60 != 0) {
                out.put((byte) ':');
                putPadded(total % 60, 2, out);
            }
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
        putClock(t.getHour(), t.getMinute(), t.getSecond(), out);
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
