package io.lakebase.spark;

import java.util.logging.Level;
import java.util.logging.Logger;

/** FINE-level java.util.logging for the provider; callers pass no tokens or secrets. */
final class Log {

    private static final Logger LOGGER = Logger.getLogger("io.lakebase.spark");

    private Log() {
    }

    /** Logs {@code String.format(format, args)} at FINE, formatting only when FINE is on. */
    static void fine(String format, Object... args) {
        if (LOGGER.isLoggable(Level.FINE)) {
            LOGGER.fine(String.format(format, args));
        }
    }
}
