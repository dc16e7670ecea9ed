package io.lakebase.spark.write;

import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.zone.ZoneRules;
import java.util.Calendar;
import java.util.GregorianCalendar;
import java.util.TimeZone;
import org.apache.spark.sql.catalyst.util.DateTimeUtils;

/**
 * Dates and timestamps as COPY text for {@link CopyTextEncoder}: as pgjdbc prints the java.sql values Spark's JDBC
 * writer binds (top-level columns), and as Postgres prints them (array elements).
 */
final class DateTimeText {

    private final ZoneId zoneId;
    private final ZoneRules zone;
    /** pgjdbc's default calendar: Gregorian with the Julian calendar before 1582, in this JVM's zone. */
    private final Calendar calendar = new GregorianCalendar(TimeZone.getDefault());

    DateTimeText(ZoneId zone) {
        this.zoneId = zone;
        this.zone = zone.getRules();
    }

    /**
     * A date as Spark's JDBC writer sends it: Spark turns the day into a java.sql.Date
     * ({@code DateTimeUtils.toJavaDate}, rebased to the hybrid Julian calendar java.sql uses), and pgjdbc prints that
     * untyped in this JVM's zone: {@code 2024-01-01 +01}, with " BC" before the offset.
     */
    void putJdbcDate(int epochDay, CopyBuffer out) {
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
    void putJdbcTimestamp(long micros, boolean wallClock, CopyBuffer out) {
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

    private void putModernTimestamp(long micros, boolean wallClock, CopyBuffer out) {
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
    private static void putClock(int hour, int minute, int second, CopyBuffer out) {
        out.put((byte) ' ');
        putPadded(hour, 2, out);
        out.put((byte) ':');
        putPadded(minute, 2, out);
        out.put((byte) ':');
        putPadded(second, 2, out);
    }

    /** pgjdbc's fraction: microseconds without trailing zeros, nothing for none. */
    private static void putFraction(int micros, CopyBuffer out) {
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
    private void putCalendarDate(CopyBuffer out) {
        putPadded(calendar.get(Calendar.YEAR), 4, out);
        out.put((byte) '-');
        putPadded(calendar.get(Calendar.MONTH) + 1, 2, out);
        out.put((byte) '-');
        putPadded(calendar.get(Calendar.DAY_OF_MONTH), 2, out);
    }

    private void putCalendarOffset(CopyBuffer out) {
        putOffset((calendar.get(Calendar.ZONE_OFFSET) + calendar.get(Calendar.DST_OFFSET)) / 1000, out);
    }

    /** pgjdbc's offset: +HH, +HH:MM or +HH:MM:SS. */
    private static void putOffset(int totalSeconds, CopyBuffer out) {
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

    static void putDate(LocalDate date, CopyBuffer out) {
        putYmd(date.getYear(), date.getMonthValue(), date.getDayOfMonth(), out);
        if (date.getYear() <= 0) {
            out.putAscii(" BC");
        }
    }

    private static void putYmd(int isoYear, int month, int day, CopyBuffer out) {
        // ISO year 0 is 1 BC; Postgres wants the positive year and a " BC" suffix after the whole value.
        putPadded(isoYear <= 0 ? 1 - isoYear : isoYear, 4, out);
        out.put((byte) '-');
        putPadded(month, 2, out);
        out.put((byte) '-');
        putPadded(day, 2, out);
    }

    void putTimestamp(long micros, boolean withOffset, CopyBuffer out) {
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

    private static void putPadded(int value, int width, CopyBuffer out) {
        String digits = Integer.toString(value);
        for (int k = digits.length(); k < width; k++) {
            out.put((byte) '0');
        }
        out.putAscii(digits);
    }
}
