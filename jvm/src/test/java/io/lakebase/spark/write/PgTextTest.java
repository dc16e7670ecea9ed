package io.lakebase.spark.write;

import java.math.BigDecimal;
import org.junit.Test;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;

/**
 * Postgres' own text for floats (float4out/float8out, Postgres 12+), its float-to-numeric casts and its rounding into
 * integers. The expected strings are what Postgres 15 prints; tests/writing/test_types.py checks the same against a
 * server and Spark's writer.
 */
public class PgTextTest {

    @Test
    public void doublesPrintAsFloat8out() {
        assertEquals("0.1", PgText.shortest(0.1));
        assertEquals("0.30000000000000004", PgText.shortest(0.1 + 0.2));
        assertEquals("1e+300", PgText.shortest(1e300));
        assertEquals("5e-324", PgText.shortest(Double.MIN_VALUE));
        assertEquals("1.7976931348623157e+308", PgText.shortest(Double.MAX_VALUE));
        assertEquals("123456789012345", PgText.shortest(123456789012345.0));
        assertEquals("1.234567890123456e+15", PgText.shortest(1234567890123456.0));
        assertEquals("0.0001", PgText.shortest(0.0001));
        assertEquals("1e-05", PgText.shortest(0.00001));
        assertEquals("100", PgText.shortest(100.0));
        assertEquals("-2.5", PgText.shortest(-2.5));
        assertEquals("1.0000000596046448", PgText.shortest(1 + Math.pow(2, -24)));
        assertEquals("-0", PgText.shortest(-0.0));
        assertEquals("0", PgText.shortest(0.0));
        assertEquals("NaN", PgText.shortest(Double.NaN));
        assertEquals("-Infinity", PgText.shortest(Double.NEGATIVE_INFINITY));
    }

    @Test
    public void floatsPrintAsFloat4out() {
        assertEquals("1.01", PgText.shortest(1.01f));
        assertEquals("1e-45", PgText.shortest(Float.MIN_VALUE));
        assertEquals("3.4028235e+38", PgText.shortest(Float.MAX_VALUE));
        assertEquals("100000", PgText.shortest(100000f));
        assertEquals("1e+06", PgText.shortest(1000000f));
        assertEquals("1.6777216e+07", PgText.shortest(16777217f));
        assertEquals("Infinity", PgText.shortest(Float.POSITIVE_INFINITY));
    }

    @Test
    public void floatsBecomeNumericWithPrintfsSignificantDigits() {
        assertEquals("0.3", PgText.numeric(0.1 + 0.2, 15));
        assertEquals("1.01", PgText.numeric(1.01f, 6));
        assertEquals("0.0000000000000000000000000000000000000000000014013", PgText.numeric(Float.MIN_VALUE, 6));
        assertEquals("340282000000000000000000000000000000000", PgText.numeric(Float.MAX_VALUE, 6));
        assertEquals("0", PgText.numeric(-0.0, 15));
        assertEquals("NaN", PgText.numeric(Double.NaN, 15));
        assertEquals("1000000000000000", PgText.numeric(1e15 + 0.3, 15));
    }

    @Test
    public void integersRoundAsPostgresCasts() {
        assertEquals("2", PgText.integer(2.5)); // dtoi4: rint, half to even
        assertEquals("-4", PgText.integer(-3.5));
        assertEquals("3", PgText.integer(new BigDecimal("2.50"))); // numeric_int4: half away from zero
        assertEquals("-10", PgText.integer(new BigDecimal("-10.25")));
        assertEquals("10000", PgText.integer(new BigDecimal("10000.00")));
        assertNull(PgText.integer(Double.NaN));
        assertNull(PgText.integer(1e300));
    }
}
