"""Spark integration for the JDBC path: the option set (``options``), the jars on Spark's classpath
(``classpath``) and secrets shipped as session files (``_session_files``). Depends on ``serving``,
``tokens`` and the root."""
