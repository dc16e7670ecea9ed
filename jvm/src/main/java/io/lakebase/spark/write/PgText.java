package io.lakebase.spark.write;

import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;

/**
 * Text exactly as Postgres (or pgjdbc) makes it, where the COPY writer must store what Spark's JDBC writer stores:
 * <ul>
 *   <li>{@code float4out}/{@code float8out} (Postgres 12+): the shortest decimal that reads back as the same value,
 *       fixed-point for display exponents -4 to 5 (real) or 14 (double precision), else {@code 1.5e+300};</li>
 *   <li>{@code float4_numeric}/{@code float8_numeric}: {@code printf("%.*g")} with 6 or 15 significant digits;</li>
 *   <li>numeric into an integer: rounded half away from zero ({@code numeric_int4});</li>
 *   <li>double into an integer: {@code rint}, half to even ({@code dtoi4}).</li>
 * </ul>
 */
final class PgText {

    private PgText() {}

    /** Postgres' float8out: "NaN", "Infinity", "-0", "0.1", "1e+300", "5e-324". */
    static String shortest(double d) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return 1 / d < 0 ? "-0" : "0";
        }
        return format(shortestDigits(new BigDecimal(d), d, false), d < 0, 15);
    }

    /** Postgres' float4out. */
    static String shortest(float f) {
        if (Float.isNaN(f)) {
            return "NaN";
        }
        if (Float.isInfinite(f)) {
            return f > 0 ? "Infinity" : "-Infinity";
        }
        if (f == 0) {
            return 1 / f < 0 ? "-0" : "0";
        }
        return format(shortestDigits(new BigDecimal(f), f, true), f < 0, 6);
    }

    /**
     * The decimal with the fewest significant digits that reads back as {@code value} (closest to it among those),
     * as Ryu computes it. Each length is tried with the nearest decimal and its neighbours, since the interval that
     * reads back as a power of two is lopsided.
     */
    private static BigDecimal shortestDigits(BigDecimal exact, double value, boolean single) {
        BigDecimal magnitude = exact.abs();
        for (int digits = 1; digits <= 17; digits++) {
            BigDecimal nearest = magnitude.round(new MathContext(digits, RoundingMode.HALF_EVEN));
            BigDecimal step = BigDecimal.ONE.scaleByPowerOfTen(nearest.precision() - nearest.scale() - digits);
            BigDecimal best = null;
            for (BigDecimal candidate : new BigDecimal[] {nearest, nearest.subtract(step), nearest.add(step)}) {
                if (candidate.signum() > 0 && readsBack(candidate, Math.abs(value), single)
                        && (best == null || candidate.subtract(magnitude).abs().compareTo(
                                best.subtract(magnitude).abs()) < 0)) {
                    best = candidate;
                }
            }
            if (best != null) {
                return best.stripTrailingZeros();
            }
        }
        return magnitude.stripTrailingZeros();
    }

    private static boolean readsBack(BigDecimal candidate, double magnitude, boolean single) {
        String text = candidate.toString();
        return single ? Float.parseFloat(text) == (float) magnitude : Double.parseDouble(text) == magnitude;
    }

    /** Ryu's to_chars as Postgres uses it: fixed-point while -4 <= exponent < maxFixed, else d.ddde[+-]XX. */
    private static String format(BigDecimal digits, boolean negative, int maxFixed) {
        int exponent = digits.precision() - digits.scale() - 1;
        StringBuilder out = new StringBuilder(negative ? "-" : "");
        if (exponent >= -4 && exponent < maxFixed) {
            return out.append(digits.toPlainString()).toString();
        }
        String mantissa = digits.unscaledValue().toString();
        out.append(mantissa.charAt(0));
        if (mantissa.length() > 1) {
            out.append('.').append(mantissa, 1, mantissa.length());
        }
        out.append('e').append(exponent < 0 ? '-' : '+');
        int e = Math.abs(exponent);
        if (e < 10) {
            out.append('0');
        }
        return out.append(e).toString();
    }

    /**
     * What {@code float8_numeric} (15 digits) or {@code float4_numeric} (6) makes of a value, as numeric text; the
     * special values as numeric spells them.
     */
    static String numeric(double d, int significantDigits) {
        if (Double.isNaN(d)) {
            return "NaN";
        }
        if (Double.isInfinite(d)) {
            return d > 0 ? "Infinity" : "-Infinity";
        }
        if (d == 0) {
            return "0";
        }
        // printf rounds the exact binary value, half to even on exact ties; %g drops trailing zeros.
        BigDecimal rounded = new BigDecimal(d).round(new MathContext(significantDigits, RoundingMode.HALF_EVEN));
        BigDecimal stripped = rounded.stripTrailingZeros();
        return (stripped.scale() < 0 ? stripped.setScale(0) : stripped).toPlainString();
    }

    /** {@code rint} then the integer, or null when Postgres would refuse it (NaN, infinite, out of a long's range). */
    static String integer(double d) {
        double r = Math.rint(d);
        if (Double.isNaN(r) || r < -0x1p63 || r >= 0x1p63) {
            return null;
        }
        return Long.toString((long) r);
    }

    /** A numeric rounded to an integer as numeric_int4/int8 do: half away from zero. */
    static String integer(BigDecimal d) {
        return d.setScale(0, RoundingMode.HALF_UP).toPlainString();
    }
}
