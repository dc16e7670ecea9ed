"""Keeps secrets out of other libraries' DEBUG logs: databricks-sdk's and py4j's.

The SDK logs every API round trip at DEBUG on the ``databricks.sdk`` logger and masks only a few
field names (``token_value``, ``value``, ...), not the ``token`` of a database credential response.
py4j logs every command it sends to the JVM at DEBUG ("Command to send: ..."), Spark options
included, so ``.options(**lakebase_options(...))`` would write the broker secret to the log. Filters
on those loggers rewrite such records before any handler sees them.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = [
    "CONNECT_STATEMENT_REDACTION",
    "STRING_REDACTION_CONF",
    "install_py4j_log_redaction",
    "install_sdk_log_redaction",
    "redact_connect_statements",
    "register_secret",
]

SDK_LOGGER = "databricks.sdk"
#: The loggers py4j writes commands and answers to (py4j.clientserver, py4j.java_gateway).
PY4J_LOGGERS = ("py4j.clientserver", "py4j.java_gateway")
MASK = "***"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_SECRET_FIELDS = re.compile(
    r'("(?:token|access_token|refresh_token|id_token|client_secret|password)"\s*:\s*)"[^"]*"'
)


#: Spark's session conf whose regex rewrites statement texts (Spark Connect's, SQL text in plans).
STRING_REDACTION_CONF = "spark.sql.redaction.string.regex"
#: The broker secret's entry in the text form of a Connect plan's options (``key: "lakebase.broker.secret"``
#: then ``value: "..."``): Spark Connect logs each operation's plan with the session's string redaction
#: only, which is unset by default, into the event log and the Connect tab of Spark's UI.
CONNECT_STATEMENT_REDACTION = r'lakebase\.broker\.secret"\s*value:\s*"[^"]*"'


def redact_connect_statements(spark: object) -> None:
    """Make a Spark Connect session redact the broker secret from the statement texts it logs; keeps
    any pattern the session already has."""
    conf = spark.conf  # type: ignore[attr-defined]
    current = conf.get(STRING_REDACTION_CONF, None)
    if current and CONNECT_STATEMENT_REDACTION in current:
        return
    conf.set(
        STRING_REDACTION_CONF,
        f"(?:{current})|{CONNECT_STATEMENT_REDACTION}" if current else CONNECT_STATEMENT_REDACTION,
    )


class _RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_FIELDS.sub(r'\1"**REDACTED**"', message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_sdk_log_redaction() -> None:
    """Add the filter to the SDK's logger once per process (idempotent)."""
    logger = logging.getLogger(SDK_LOGGER)
    if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
        logger.addFilter(_RedactSecrets())


def register_secret(value: str) -> None:
    """Mask ``value`` wherever the py4j filter finds it (every broker secret of this process)."""
    if len(value) >= 16:  # a short value would mask innocent text; broker secrets are 43 characters
        with _secrets_lock:
            _secrets.add(value)


class _RedactKnownSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        with _secrets_lock:
            known = tuple(_secrets)
        if not known:
            return True
        message = record.getMessage()
        redacted = message
        for secret in known:
            redacted = redacted.replace(secret, MASK)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def install_py4j_log_redaction() -> None:
    """Add the known-secrets filter to py4j's loggers once per process (idempotent)."""
    for name in PY4J_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactKnownSecrets) for f in logger.filters):
            logger.addFilter(_RedactKnownSecrets())
