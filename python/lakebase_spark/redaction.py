"""Keeps database tokens out of databricks-sdk's DEBUG logs.

The SDK logs every API round trip at DEBUG on the ``databricks.sdk`` logger and masks only a few
field names (``token_value``, ``value``, ...), not the ``token`` of a database credential response.
A filter on that logger rewrites such records before any handler sees them.
"""

from __future__ import annotations

import logging
import re

__all__ = ["install_sdk_log_redaction"]

SDK_LOGGER = "databricks.sdk"
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
