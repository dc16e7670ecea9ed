package io.lakebase.spark.write;

import java.nio.charset.StandardCharsets;
import java.time.LocalDate;
import java.time.ZoneId;
import java.util.TimeZone;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.util.GenericArrayData;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.Metadata;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;
import org.junit.Test;
import static org.junit.Assert.assertEquals;

/** COPY text for one value at a time, as Spark's writer would make Postgres store it in the target column. */
public class CopyTextEncoderTest {

    private static final ZoneId BERLIN = ZoneId.of("Europe/Berlin");

    private static String encode(DataType type, Object value, ColumnTarget target, ZoneId zone) {
        StructType schema = new StructType(new StructField[] {new StructField("c", type, true, Metadata.empty())});
        CopyTextEncoder encoder = new CopyTextEncoder(schema, target == null ? null : new ColumnTarget[] {target}, zone);
        CopyBuffer out = new CopyBuffer(64);
        InternalRow row = new GenericInternalRow(new Object[] {value});
        encoder.encode(row, out);
        return new String(out.bytes, 0, out.length - 1, StandardCharsets.UTF_8); // without the newline
    }

    private static ColumnTarget column(String type, char category) {
        return new ColumnTarget(type, category, false, ',');
    }

    /** Spark's java.sql conversions and pgjdbc's printing use the JVM's default zone, as on an executor. */
    @Test
    public void datesAndTimestampsAreWrittenAsPgjdbcSendsThem() {
        TimeZone saved = TimeZone.getDefault();
        TimeZone.setDefault(TimeZone.getTimeZone(BERLIN));
        try {
            datesAndTimestampsInBerlin();
        } finally {
            TimeZone.setDefault(saved);
        }
    }

    private void datesAndTimestampsInBerlin() {
        int day = (int) LocalDate.of(2024, 1, 1).toEpochDay();
        assertEquals("2024-01-01 +01", encode(DataTypes.DateType, day, column("text", 'S'), BERLIN));
        long micros = (LocalDate.of(2024, 7, 1).toEpochDay() * 86_400L + 3_600L) * 1_000_000L + 500_000L;
        // 01:00:00.5 UTC is 03:00:00.5 in Berlin's summer; pgjdbc drops trailing zeros of the fraction.
        assertEquals("2024-07-01 03:00:00.5+02", encode(DataTypes.TimestampType, micros, column("text", 'S'), BERLIN));
        // Year 0 is 1 BC; pgjdbc puts the era before the offset for dates. That long before Berlin's first recorded
        // transition java.util.TimeZone reports its standard offset (java.time would say local mean time, +00:53:28).
        assertEquals("0001-01-01 BC +01",
                encode(DataTypes.DateType, (int) LocalDate.of(0, 1, 1).toEpochDay(), null, BERLIN));
    }

    @Test
    public void numbersIntoOtherColumnTypesAreConvertedAsPostgresCastsSparksParameter() {
        assertEquals("true", encode(DataTypes.BooleanType, true, column("text", 'S'), BERLIN));
        assertEquals("t", encode(DataTypes.BooleanType, true, column("bool", 'B'), BERLIN));
        assertEquals("1.0099999904632568", encode(DataTypes.FloatType, 1.01f, column("float8", 'N'), BERLIN));
        assertEquals("0.3", encode(DataTypes.DoubleType, 0.1 + 0.2, column("numeric", 'N'), BERLIN));
        assertEquals("1.0", encode(DataTypes.DoubleType, 1 + Math.pow(2, -24), column("float4", 'N'), BERLIN));
        assertEquals("4294967295", encode(DataTypes.IntegerType, -1, column("regclass", 'N'), BERLIN));
        assertEquals("-1", encode(DataTypes.IntegerType, -1, column("oid", 'N'), BERLIN));
    }

    @Test
    public void arraysFollowTheColumnsDelimiterAndArrayOutIntoText() {
        DataType strings = DataTypes.createArrayType(DataTypes.StringType);
        GenericArrayData boxes = new GenericArrayData(new Object[] {UTF8String.fromString("(1,2),(3,4)"),
            UTF8String.fromString("(5,6),(7,8)")});
        assertEquals("{\"(1,2),(3,4)\";\"(5,6),(7,8)\"}",
                encode(strings, boxes, new ColumnTarget("box", 'G', true, ';'), BERLIN));
        GenericArrayData words = new GenericArrayData(new Object[] {UTF8String.fromString("a"),
            UTF8String.fromString("b c"), null, UTF8String.fromString(""), UTF8String.fromString("null")});
        // array_out quotes only what needs it; COPY then escapes the backslashes it adds.
        assertEquals("{a,\"b c\",NULL,\"\",\"null\"}", encode(strings, words, column("text", 'S'), BERLIN));
        GenericArrayData flags = new GenericArrayData(new Object[] {true, false});
        assertEquals("{t,f}", encode(DataTypes.createArrayType(DataTypes.BooleanType), flags, column("text", 'S'),
                BERLIN));
    }
}
