"""Driver-side Postgres: psycopg connections that log in the way the JVM provider does (``connection``).
Depends on ``serving``, ``tokens`` and the root."""
