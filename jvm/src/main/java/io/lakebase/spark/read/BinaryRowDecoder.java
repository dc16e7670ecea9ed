package io.lakebase.spark.read;

import io.lakebase.spark.core.LakebaseException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.sql.SQLException;
import java.util.List;
import org.apache.spark.sql.execution.vectorized.WritableColumnVector;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DecimalType;
import org.apache.spark.sql.types.IntegerType;
import org.apache.spark.sql.types.LongType;
import org.apache.spark.sql.types.ShortType;
import org.apache.spark.sql.types.StructType;

/**
 * Decodes the rows of a binary COPY ({@code FORMAT binary}) straight into Spark's column vectors: no object per
 * value for integers, floats, booleans, dates, timestamps and decimals of up to 18 digits; text and bytea are copied
 * from the message into the vector's own bytes. Postgres sends one row per CopyData message; the first also
 * carries the 19-byte header, the last message is the trailer (a field count of -1).
 */
final class BinaryRowDecoder {

    static final byte[] SIGNATURE = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', (byte) 0xff, '\r', '\n', 0};
    private static final int NUMERIC_NAN = 0xC000;
    private static final int NUMERIC_NEG = 0x4000;
    private static final long[] POW10 = new long[19];

    static {
        POW10[0] = 1;
        for (int i = 1; i < POW10.length; i++) {
            POW10[i] = POW10[i - 1] * 10;
        }
    }

    private final PgBinaryType[] types;
    private final String[] names;
    private final int[] widths; // Spark's storage: 2 short, 4 int, 8 long (integers, decimals), else 0
    private final int[] precisions;
    private final int[] scales;
    private final PgTimes times;
    private boolean started;

    /** {@code columns} in {@code schema}'s order, each checked to fill its field by {@link CopyReadTable}. */
    BinaryRowDecoder(List<ReadOptions.Column> columns, StructType schema, PgTimes times) {
        int n = columns.size();
        this.types = new PgBinaryType[n];
        this.names = new String[n];
        this.widths = new int[n];
        this.precisions = new int[n];
        this.scales = new int[n];
        this.times = times;
        for (int i = 0; i < n; i++) {
            types[i] = columns.get(i).type;
            names[i] = columns.get(i).name;
            DataType spark = schema.fields()[i].dataType();
            if (spark instanceof ShortType) {
                widths[i] = 2;
            } else if (spark instanceof IntegerType) {
                widths[i] = 4;
            } else if (spark instanceof LongType) {
                widths[i] = 8;
            } else if (spark instanceof DecimalType) {
                DecimalType d = (DecimalType) spark;
                precisions[i] = d.precision();
                scales[i] = d.scale();
            }
        }
    }

    /** Decodes one message into row {@code row}; false at the trailer (no row). */
    boolean decode(byte[] m, WritableColumnVector[] vectors, int row) throws SQLException {
        int pos = 0;
        if (!started) {
            pos = header(m);
            started = true;
        }
        int fields = short16(m, pos);
        pos += 2;
        if (fields == -1) {
            return false;
        }
        if (fields != types.length) {
            throw corrupt("a row of " + fields + " fields, " + types.length + " selected");
        }
        for (int i = 0; i < fields; i++) {
            int len = int32(m, pos);
            pos += 4;
            WritableColumnVector v = vectors[i];
            if (len == -1) {
                v.putNull(row);
                continue;
            }
            if (len < 0 || pos + len > m.length) {
                throw corrupt("a field of " + len + " bytes");
            }
            value(i, m, pos, len, v, row);
            pos += len;
        }
        return true;
    }

    private void value(int i, byte[] m, int p, int len, WritableColumnVector v, int row) throws SQLException {
        switch (types[i]) {
            case INT2:
                integer(i, short16(m, p), v, row);
                break;
            case INT4:
                integer(i, int32(m, p), v, row);
                break;
            case INT8:
                v.putLong(row, int64(m, p));
                break;
            case FLOAT4:
                v.putFloat(row, Float.intBitsToFloat(int32(m, p)));
                break;
            case FLOAT8:
                v.putDouble(row, Double.longBitsToDouble(int64(m, p)));
                break;
            case BOOL:
                v.putBoolean(row, m[p] != 0);
                break;
            case TEXT:
            case BYTEA:
                v.putByteArray(row, m, p, len);
                break;
            case DATE:
                v.putInt(row, times.date(int32(m, p)));
                break;
            case TIMESTAMP:
                v.putLong(row, times.timestamp(int64(m, p)));
                break;
            case TIMESTAMPTZ:
                v.putLong(row, times.timestamptz(int64(m, p)));
                break;
            case NUMERIC:
                numeric(i, m, p, v, row);
                break;
            default:
                throw corrupt("type " + types[i]);
        }
    }

    private void integer(int i, int value, WritableColumnVector v, int row) {
        if (widths[i] == 2) {
            v.putShort(row, (short) value);
        } else if (widths[i] == 4) {
            v.putInt(row, value);
        } else {
            v.putLong(row, value);
        }
    }

    /**
     * A binary numeric (digit count, weight, sign, display scale, then base-10000 digits) into a decimal(p, s) as
     * Spark's JDBC reader makes it: {@code Decimal(new BigDecimal(text), p, s)}, so rounding HALF_UP to s and the same
     * error when it does not fit. Exact values of up to 18 digits skip the BigDecimal.
     */
    private void numeric(int i, byte[] m, int p, WritableColumnVector v, int row) throws SQLException {
        int ndigits = short16(m, p);
        int weight = short16(m, p + 2);
        int sign = short16(m, p + 4) & 0xffff;
        int dscale = short16(m, p + 6) & 0xffff;
        if ((sign & NUMERIC_NAN) == NUMERIC_NAN) { // NaN 0xC000, +Infinity 0xD000, -Infinity 0xF000
            String text = sign == NUMERIC_NAN ? "NaN" : sign == 0xD000 ? "Infinity" : "-Infinity";
            // The JDBC reader fails on them too, in pgjdbc's words (ClassCastException, "invalid sign").
            throw new LakebaseException.Sql("lakebase: column " + names[i] + " holds the numeric " + text
                    + ", which a Spark decimal cannot hold. Read it as a double or a string (customSchema '"
                    + names[i] + " DOUBLE' or '" + names[i] + " STRING'), or map it in a view", "22003");
        }
        int precision = precisions[i];
        int scale = scales[i];
        if (precision <= 18) {
            long unscaled = 0;
            boolean exact = true;
            for (int d = 0; d < ndigits && exact; d++) {
                int digit = short16(m, p + 8 + 2 * d);
                int exp = 4 * (weight - d) + scale; // this digit group times 10^exp, in units of 10^-scale
                if (exp >= 0) {
                    if (digit != 0 && exp > 18) {
                        exact = false; // too large: the slow path says how Spark refuses it
                    } else if (digit != 0) {
                        try {
                            unscaled = Math.addExact(unscaled, Math.multiplyExact(digit, POW10[exp]));
                        } catch (ArithmeticException e) {
                            exact = false;
                        }
                    }
                } else if (exp > -4 && digit % POW10[-exp] == 0) {
                    unscaled += digit / POW10[-exp];
                } else if (digit != 0) {
                    exact = false; // digits beyond the scale: round as Spark does
                }
            }
            if (exact && unscaled < POW10[precision]) {
                long value = sign == NUMERIC_NEG ? -unscaled : unscaled;
                if (precision <= 9) {
                    v.putInt(row, (int) value);
                } else {
                    v.putLong(row, value);
                }
                return;
            }
        }
        BigInteger digits = BigInteger.ZERO;
        BigInteger base = BigInteger.valueOf(10_000);
        for (int d = 0; d < ndigits; d++) {
            digits = digits.multiply(base).add(BigInteger.valueOf(short16(m, p + 8 + 2 * d)));
        }
        BigDecimal value = new BigDecimal(sign == NUMERIC_NEG ? digits.negate() : digits)
                .scaleByPowerOfTen(4 * (weight - ndigits + 1)).setScale(dscale, java.math.RoundingMode.UNNECESSARY);
        // Spark's JDBC reader: Decimal(value, p, s), with its rounding and its error when the value does not fit.
        v.putDecimal(row, org.apache.spark.sql.types.Decimal$.MODULE$.apply(value, precision, scale), precision);
    }

    private int header(byte[] m) throws SQLException {
        if (m.length < SIGNATURE.length + 8) {
            throw corrupt("a header of " + m.length + " bytes");
        }
        for (int k = 0; k < SIGNATURE.length; k++) {
            if (m[k] != SIGNATURE[k]) {
                throw corrupt("no PGCOPY signature");
            }
        }
        return SIGNATURE.length + 8 + int32(m, SIGNATURE.length + 4);
    }

    private static SQLException corrupt(String what) {
        return new LakebaseException.Sql("lakebase: the binary COPY stream is not what the reader expects (" + what
                + "); read with reader=\"jdbc\" and report this", "XX001");
    }

    static int short16(byte[] m, int p) {
        return (short) (((m[p] & 0xff) << 8) | (m[p + 1] & 0xff));
    }

    static int int32(byte[] m, int p) {
        return ((m[p] & 0xff) << 24) | ((m[p + 1] & 0xff) << 16) | ((m[p + 2] & 0xff) << 8) | (m[p + 3] & 0xff);
    }

    static long int64(byte[] m, int p) {
        return ((long) int32(m, p) << 32) | (int32(m, p + 4) & 0xffffffffL);
    }
}
