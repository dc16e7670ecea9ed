"""Driver-side Postgres: psycopg connections that log in the way the JVM provider does (``connection``),
and exported snapshots every connection of a read imports (``snapshots``).
Depends on ``serving``, ``tokens`` and the root."""
