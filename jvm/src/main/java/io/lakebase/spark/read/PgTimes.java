package io.lakebase.spark.read;

import io.lakebase.spark.connection.PgCopyApi;
import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.Date;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.zone.ZoneRules;
import java.util.Calendar;
import org.apache.spark.sql.catalyst.util.DateTimeUtils;
import org.apache.spark.sql.jdbc.JdbcDialect;

/**
 * Binary {@code date}, {@code timestamp} and {@code timestamptz} values as the JDBC reader would give them.
 *
 * <p>Common values take arithmetic: Postgres counts from 2000-01-01 in the proleptic Gregorian calendar, as Spark
 * does. The rest (before 1900, ±infinity, a wall-clock time in a DST gap or overlap of this JVM's zone) go the
 * JDBC reader's own way: the value's text as Postgres prints it, parsed by pgjdbc's TimestampUtils in the JVM's
 * zone, converted by the Postgres dialect and Spark's {@code fromJavaTimestamp}/{@code fromJavaDate} (their
 * Julian-calendar rebasing included). So every value is the JDBC reader's, bit for bit.
 */
final class PgTimes {

    /** 2000-01-01 (Postgres' epoch) in days and microseconds since 1970-01-01. */
    static final int EPOCH_DAYS = 10_957;
    static final long EPOCH_MICROS = EPOCH_DAYS * 86_400_000_000L;
    /** 1900-01-01 relative to 2000-01-01: before it, calendars and zones disagree in ways only the slow path knows. */
    private static final int MODERN_DAYS = -36_524;
    private static final long MODERN_MICROS = MODERN_DAYS * 86_400_000_000L;
    private static final DateTimeFormatter OFFSET = DateTimeFormatter.ofPattern("xxxxx");

    private final Object timestampUtils;
    private final Method toTimestamp;
    private final Method toDate;
    private final JdbcDialect dialect;
    /** The dialect's date conversion (Spark 4; Spark 3.5's reader has none), or null. */
    private final Method convertDate;
    private final ZoneId zone;
    private final ZoneRules rules;
    /** The zone's offset in microseconds when it never changes, else Long.MIN_VALUE. */
    private final long fixedOffsetMicros;

    /** The JDBC reader's conversions as pgjdbc does them on {@code conn}, in this JVM's zone. */
    static PgTimes of(Connection conn, JdbcDialect dialect) throws SQLException {
        Class<?> base = PgCopyApi.type(conn, "org.postgresql.core.BaseConnection");
        try {
            return new PgTimes(base.getMethod("getTimestampUtils").invoke(conn.unwrap(base)), dialect,
                    ZoneId.systemDefault());
        } catch (ReflectiveOperationException e) {
            throw PgCopyApi.failure(e);
        }
    }

    /** {@code timestampUtils}: pgjdbc's TimestampUtils for the slow path (null: common values only, for tests). */
    PgTimes(Object timestampUtils, JdbcDialect dialect, ZoneId zone) throws SQLException {
        this.timestampUtils = timestampUtils;
        try {
            Class<?> utils = timestampUtils == null ? null : timestampUtils.getClass();
            this.toTimestamp = utils == null ? null : utils.getMethod("toTimestamp", Calendar.class, String.class);
            this.toDate = utils == null ? null : utils.getMethod("toDate", Calendar.class, String.class);
        } catch (ReflectiveOperationException e) {
            throw PgCopyApi.failure(e);
        }
        this.dialect = dialect;
        Method convert;
        try {
            convert = dialect.getClass().getMethod("convertJavaDateToDate", Date.class);
        } catch (NoSuchMethodException e) {
            convert = null;
        }
        this.convertDate = convert;
        this.zone = zone;
        this.rules = zone.getRules();
        this.fixedOffsetMicros = rules.isFixedOffset()
                ? rules.getOffset(java.time.Instant.EPOCH).getTotalSeconds() * 1_000_000L : Long.MIN_VALUE;
    }

    /** Days since 1970-01-01 of a binary {@code date} (days since 2000-01-01). */
    int date(int pgDays) throws SQLException {
        if (pgDays >= MODERN_DAYS && pgDays != Integer.MAX_VALUE) {
            return pgDays + EPOCH_DAYS;
        }
        String text = pgDays == Integer.MAX_VALUE ? "infinity" : pgDays == Integer.MIN_VALUE ? "-infinity"
                : dateText(LocalDate.ofEpochDay((long) pgDays + EPOCH_DAYS));
        requireUtils(text);
        Date parsed = (Date) PgCopyApi.call(toDate, timestampUtils, null, text);
        if (convertDate != null) {
            parsed = (Date) PgCopyApi.call(convertDate, dialect, parsed);
        }
        return DateTimeUtils.fromJavaDate(parsed);
    }

    /** Microseconds since 1970-01-01 UTC of a binary {@code timestamptz} (microseconds since 2000-01-01 UTC). */
    long timestamptz(long pgMicros) throws SQLException {
        if (pgMicros >= MODERN_MICROS && pgMicros != Long.MAX_VALUE) {
            return pgMicros + EPOCH_MICROS;
        }
        if (pgMicros == Long.MAX_VALUE || pgMicros == Long.MIN_VALUE) {
            return slowTimestamp(pgMicros == Long.MAX_VALUE ? "infinity" : "-infinity");
        }
        // As Postgres prints it in the session's TimeZone, which pgjdbc set to this JVM's zone.
        ZonedDateTime at = LocalDateTime.ofEpochSecond(Math.floorDiv(pgMicros + EPOCH_MICROS, 1_000_000L),
                (int) Math.floorMod(pgMicros, 1_000_000L) * 1000, ZoneOffset.UTC).atZone(ZoneOffset.UTC)
                .withZoneSameInstant(zone);
        return slowTimestamp(localText(at.toLocalDateTime()) + OFFSET.format(at) + era(at.getYear()));
    }

    /**
     * Microseconds since 1970-01-01 UTC of a binary {@code timestamp} (a wall-clock time, microseconds since
     * 2000-01-01), read in this JVM's zone as pgjdbc reads it.
     */
    long timestamp(long pgMicros) throws SQLException {
        if (pgMicros >= MODERN_MICROS && pgMicros != Long.MAX_VALUE) {
            long local = pgMicros + EPOCH_MICROS;
            if (fixedOffsetMicros != Long.MIN_VALUE) {
                return local - fixedOffsetMicros;
            }
            LocalDateTime wall = LocalDateTime.ofEpochSecond(Math.floorDiv(local, 1_000_000L),
                    (int) Math.floorMod(local, 1_000_000L) * 1000, ZoneOffset.UTC);
            if (rules.getTransition(wall) == null) { // not in a gap or an overlap: one offset, no choice to make
                return local - rules.getOffset(wall).getTotalSeconds() * 1_000_000L;
            }
            return slowTimestamp(localText(wall));
        }
        if (pgMicros == Long.MAX_VALUE || pgMicros == Long.MIN_VALUE) {
            return slowTimestamp(pgMicros == Long.MAX_VALUE ? "infinity" : "-infinity");
        }
        LocalDateTime wall = LocalDateTime.ofEpochSecond(Math.floorDiv(pgMicros + EPOCH_MICROS, 1_000_000L),
                (int) Math.floorMod(pgMicros, 1_000_000L) * 1000, ZoneOffset.UTC);
        return slowTimestamp(localText(wall) + era(wall.getYear()));
    }

    private long slowTimestamp(String text) throws SQLException {
        requireUtils(text);
        Timestamp parsed = (Timestamp) PgCopyApi.call(toTimestamp, timestampUtils, null, text);
        return DateTimeUtils.fromJavaTimestamp(dialect.convertJavaTimestampToTimestamp(parsed));
    }

    private void requireUtils(String text) {
        if (timestampUtils == null) {
            throw new IllegalStateException("no pgjdbc TimestampUtils to read '" + text + "' with");
        }
    }

    /** Postgres' ISO text of a proleptic date: 4-digit year, and "BC" for years before 1 (year 0 is 1 BC). */
    static String dateText(LocalDate date) {
        return String.format("%04d-%02d-%02d", pgYear(date.getYear()), date.getMonthValue(), date.getDayOfMonth())
                + era(date.getYear());
    }

    private static String localText(LocalDateTime t) {
        String text = String.format("%04d-%02d-%02d %02d:%02d:%02d", pgYear(t.getYear()), t.getMonthValue(),
                t.getDayOfMonth(), t.getHour(), t.getMinute(), t.getSecond());
        int micros = t.getNano() / 1000;
        return micros == 0 ? text : text + String.format(".%06d", micros);
    }

    private static int pgYear(int isoYear) {
        return isoYear > 0 ? isoYear : 1 - isoYear;
    }

    private static String era(int isoYear) {
        return isoYear > 0 ? "" : " BC";
    }
}
