package io.lakebase.spark.core;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The provider's diagnostics, through slf4j (which Spark ships and routes to its log4j), so they land in Spark's
 * log at the level the user sets for {@code io.lakebase.spark}. Callers pass no tokens or secrets.
 */
public final class Log {

    private static final Logger LOGGER = LoggerFactory.getLogger("io.lakebase.spark");

    private Log() {
    }

    /** Logs {@code String.format(format, args)} at DEBUG, formatting only when DEBUG is on. */
    public static void fine(String format, Object... args) {
        if (LOGGER.isDebugEnabled()) {
            LOGGER.debug(String.format(format, args));
        }
    }

    /** Logs {@code String.format(format, args)} at WARN. */
    public static void warning(String format, Object... args) {
        if (LOGGER.isWarnEnabled()) {
            LOGGER.warn(String.format(format, args));
        }
    }
}
