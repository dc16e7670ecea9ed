package io.lakebase.spark.read;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import org.apache.spark.sql.execution.vectorized.OnHeapColumnVector;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.jdbc.JdbcDialects;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.junit.Test;
import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

/**
 * The binary COPY decoder, type by type, on messages built here as Postgres' send functions write them. Values
 * that need pgjdbc's own parsing (before 1900, ±infinity, DST gaps) are compared with the JDBC reader end to end
 * by tests/reading/test_copy_reader.py and test_copy_jobs.py.
 */
public class BinaryRowDecoderTest {

    private static final StructType EMPTY = new StructType();

    /** One column of Postgres type {@code pg} read as Spark {@code spark}: decodes {@code field} (null: NULL). */
    private static WritableColumnVector decode(String pg, DataType spark, byte[] field, ZoneId zone)
            throws SQLException, IOException {
        List<ReadOptions.Column> columns = new ArrayList<>();
        columns.add(new ReadOptions.Column("c", "\"c\"", PgBinaryType.named(pg)));
        StructType schema = EMPTY.add(new StructField("c", spark, true, org.apache.spark.sql.types.Metadata.empty()));
        PgTimes times = new PgTimes(null, JdbcDialects.get("jdbc:postgresql://h/d"), zone);
        BinaryRowDecoder decoder = new BinaryRowDecoder(columns, schema, times);
        WritableColumnVector[] vectors = OnHeapColumnVector.allocateColumns(4, schema);
        assertTrue(decoder.decode(message(true, field), vectors, 0));
        assertFalse(decoder.decode(trailer(), vectors, 1));
        return vectors[0];
    }

    private static WritableColumnVector decode(String pg, DataType spark, byte[] field) throws Exception {
        return decode(pg, spark, field, ZoneOffset.UTC);
    }

    private static byte[] message(boolean header, byte[] field) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        if (header) {
            out.write(BinaryRowDecoder.SIGNATURE);
            out.writeInt(0);
            out.writeInt(0);
        }
        out.writeShort(1);
        if (field == null) {
            out.writeInt(-1);
        } else {
            out.writeInt(field.length);
            out.write(field);
        }
        return bytes.toByteArray();
    }

    private static byte[] trailer() {
        return new byte[] {(byte) 0xff, (byte) 0xff};
    }

    private static byte[] bytes(int length, long value) {
        byte[] out = new byte[length];
        for (int i = length - 1; i >= 0; i--) {
            out[i] = (byte) value;
            value >>= 8;
        }
        return out;
    }

    /** numeric_send: digit count, weight, sign, display scale, then base-10000 digits. */
    static byte[] numeric(BigDecimal value) throws IOException {
        int dscale = Math.max(value.scale(), 0);
        String plain = value.abs().setScale(dscale).toPlainString();
        String intPart = plain.contains(".") ? plain.substring(0, plain.indexOf('.')) : plain;
        String frac = plain.contains(".") ? plain.substring(plain.indexOf('.') + 1) : "";
        while (intPart.length() % 4 != 0) {
            intPart = "0" + intPart;
        }
        while (frac.length() % 4 != 0) {
            frac = frac + "0";
        }
        List<Integer> groups = new ArrayList<>();
        for (int i = 0; i < intPart.length(); i += 4) {
            groups.add(Integer.parseInt(intPart.substring(i, i + 4)));
        }
        int weight = groups.size() - 1;
        for (int i = 0; i < frac.length(); i += 4) {
            groups.add(Integer.parseInt(frac.substring(i, i + 4)));
        }
        while (!groups.isEmpty() && groups.get(0) == 0) {
            groups.remove(0);
            weight--;
        }
        while (!groups.isEmpty() && groups.get(groups.size() - 1) == 0) {
            groups.remove(groups.size() - 1);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.writeShort(groups.size());
        out.writeShort(groups.isEmpty() ? 0 : weight);
        out.writeShort(value.signum() < 0 ? 0x4000 : 0);
        out.writeShort(dscale);
        for (int g : groups) {
            out.writeShort(g);
        }
        return bytes.toByteArray();
    }

    private static byte[] special(int sign) {
        return new byte[] {0, 0, 0, 0, (byte) (sign >> 8), 0, 0, 0};
    }

    @Test
    public void integersFillTheirOwnAndWiderTypes() throws Exception {
        assertEquals(-32768, decode("int2", DataTypes.ShortType, bytes(2, -32768)).getShort(0));
        assertEquals(32767, decode("int2", DataTypes.IntegerType, bytes(2, 32767)).getInt(0));
        assertEquals(-5, decode("int2", DataTypes.LongType, bytes(2, -5)).getLong(0));
        assertEquals(Integer.MIN_VALUE, decode("int4", DataTypes.IntegerType, bytes(4, Integer.MIN_VALUE)).getInt(0));
        assertEquals(Integer.MAX_VALUE, decode("int4", DataTypes.LongType, bytes(4, Integer.MAX_VALUE)).getLong(0));
        assertEquals(Long.MIN_VALUE, decode("int8", DataTypes.LongType, bytes(8, Long.MIN_VALUE)).getLong(0));
    }

    @Test
    public void floatsAndBooleansAreTheirBits() throws Exception {
        assertEquals(0.1f, decode("float4", DataTypes.FloatType, bytes(4, Float.floatToIntBits(0.1f))).getFloat(0),
                0f);
        assertTrue(Float.isNaN(decode("float4", DataTypes.FloatType, bytes(4, Float.floatToIntBits(Float.NaN)))
                .getFloat(0)));
        double negativeZero = decode("float8", DataTypes.DoubleType, bytes(8, Double.doubleToLongBits(-0.0)))
                .getDouble(0);
        assertEquals(Double.doubleToLongBits(-0.0), Double.doubleToLongBits(negativeZero));
        assertEquals(Double.NEGATIVE_INFINITY, decode("float8", DataTypes.DoubleType,
                bytes(8, Double.doubleToLongBits(Double.NEGATIVE_INFINITY))).getDouble(0), 0.0);
        assertTrue(decode("bool", DataTypes.BooleanType, new byte[] {1}).getBoolean(0));
        assertFalse(decode("bool", DataTypes.BooleanType, new byte[] {0}).getBoolean(0));
    }

    @Test
    public void numericsAreExactRoundedHalfUpOrRefused() throws Exception {
        String[][] cases = {
            // value, precision, scale, expected
            {"1234567890.12", "12", "2", "1234567890.12"},
            {"-0.01", "12", "2", "-0.01"},
            {"0", "5", "5", "0.00000"},
            {"0.12345", "5", "5", "0.12345"},
            {"99999999999999.9999", "18", "4", "99999999999999.9999"},
            {"12.345", "12", "2", "12.35"}, // HALF_UP, as Spark's Decimal(value, p, s)
            {"-12.345", "12", "2", "-12.35"},
            {"12345678901234567890.123456789", "38", "18", "12345678901234567890.123456789000000000"},
            {"0.000000000000000000001", "38", "18", "0E-18"},
            {"10000", "9", "0", "10000"},
            {"123456789", "9", "0", "123456789"},
        };
        for (String[] c : cases) {
            DataType type = DataTypes.createDecimalType(Integer.parseInt(c[1]), Integer.parseInt(c[2]));
            WritableColumnVector v = decode("numeric", type, numeric(new BigDecimal(c[0])));
            BigDecimal got = v.getDecimal(0, Integer.parseInt(c[1]), Integer.parseInt(c[2])).toJavaBigDecimal();
            assertEquals(c[0] + " as " + type.simpleString(), new BigDecimal(c[3]), got);
        }
        try {
            decode("numeric", DataTypes.createDecimalType(4, 1), numeric(new BigDecimal("9999999999.99")));
            fail("a value that does not fit is refused, as Spark refuses it");
        } catch (ArithmeticException expected) {
            // Spark's own error (NUMERIC_VALUE_OUT_OF_RANGE / DECIMAL_PRECISION_EXCEEDS_MAX_PRECISION)
        }
        for (int sign : new int[] {0xC000, 0xD000, 0xF000}) {
            try {
                decode("numeric", DataTypes.createDecimalType(10, 2), special(sign));
                fail("NaN and infinities are refused");
            } catch (SQLException expected) {
                assertEquals("22003", expected.getSQLState());
                assertTrue(expected.getMessage(), expected.getMessage().contains("column c holds the numeric"));
            }
        }
    }

    @Test
    public void textAndByteaAreTheirBytes() throws Exception {
        byte[] text = "héllo 😀\tx".getBytes(StandardCharsets.UTF_8);
        assertEquals("héllo 😀\tx", decode("text", DataTypes.StringType, text).getUTF8String(0).toString());
        assertEquals("", decode("text", DataTypes.StringType, new byte[0]).getUTF8String(0).toString());
        byte[] bytea = {0, (byte) 0xff, 16};
        assertArrayEquals(bytea, decode("bytea", DataTypes.BinaryType, bytea).getBinary(0));
    }

    @Test
    public void datesAndTimestampsCountFrom2000() throws Exception {
        int days = (int) (LocalDate.of(2024, 3, 10).toEpochDay() - PgTimes.EPOCH_DAYS);
        assertEquals(LocalDate.of(2024, 3, 10).toEpochDay(),
                decode("date", DataTypes.DateType, bytes(4, days)).getInt(0));
        long micros = LocalDateTime.of(2024, 6, 30, 23, 59, 59, 123456000).toEpochSecond(ZoneOffset.UTC) * 1_000_000L
                + 123456;
        long pg = micros - PgTimes.EPOCH_MICROS;
        assertEquals(micros, decode("timestamptz", DataTypes.TimestampType, bytes(8, pg)).getLong(0));
        assertEquals(micros, decode("timestamp", DataTypes.TimestampType, bytes(8, pg)).getLong(0));
        // A wall-clock time is read in the JVM's zone: 23:59:59 in New York (EDT, -4h) is 03:59:59 UTC.
        ZoneId newYork = ZoneId.of("America/New_York");
        assertEquals(micros + 4 * 3_600_000_000L,
                decode("timestamp", DataTypes.TimestampType, bytes(8, pg), newYork).getLong(0));
        try {
            decode("timestamp", DataTypes.TimestampType, bytes(8, Long.MAX_VALUE));
            fail("infinity takes pgjdbc's own parsing, which this test leaves out");
        } catch (IllegalStateException expected) {
            assertTrue(expected.getMessage().contains("infinity"));
        }
    }

    @Test
    public void nullIsNullForEveryType() throws Exception {
        for (String pg : new String[] {"int8", "numeric", "text", "timestamptz"}) {
            DataType spark = pg.equals("int8") ? DataTypes.LongType : pg.equals("numeric")
                    ? DataTypes.createDecimalType(12, 2) : pg.equals("text") ? DataTypes.StringType
                    : DataTypes.TimestampType;
            assertTrue(pg, decode(pg, spark, null).isNullAt(0));
        }
    }

    @Test
    public void aStreamThatIsNotBinaryCopyIsRefused() throws Exception {
        List<ReadOptions.Column> columns = new ArrayList<>();
        columns.add(new ReadOptions.Column("c", "\"c\"", PgBinaryType.INT8));
        StructType schema = EMPTY.add("c", DataTypes.LongType);
        BinaryRowDecoder decoder = new BinaryRowDecoder(columns, schema,
                new PgTimes(null, JdbcDialects.get("jdbc:postgresql://h/d"), ZoneOffset.UTC));
        try {
            decoder.decode("not a copy header at all, no".getBytes(StandardCharsets.US_ASCII),
                    OnHeapColumnVector.allocateColumns(1, schema), 0);
            fail("a stream without the PGCOPY signature is refused");
        } catch (SQLException expected) {
            assertEquals("XX001", expected.getSQLState());
        }
    }
}
