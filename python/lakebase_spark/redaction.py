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

__all__ = ["install_py4j_log_redaction", "install_sdk_log_redaction", "register_secret"]

SDK_LOGGER = "databricks.sdk"
#: The loggers py4j writes commands and answers to (py4j.clientserver, py4j.java_gateway).
PY4J_LOGGERS = ("py4j.clientserver", "py4j.java_gateway")
MASK = "***"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_SECRET_FIELDS = re.compile(
    r'("(?:token|access_token|refresh_token|id_token|client_secret|password)"\s*:\s*)"[^"]*"'
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
