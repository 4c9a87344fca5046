"""Secrets that travel in URLs stay out of the logs.

A login card's code (`/card/CODE`, from cards printed before their QR code used a fragment)
and a password-reset token (`/password/reset/TOKEN`) are as good as a password while valid;
the access log would hand them to whoever reads it.
"""

from __future__ import annotations

import logging
import re

_SECRET_PATHS = re.compile(r"(/card/|/password/reset/)[^\s?#\"']+")
REDACTED = r"\1…"
ACCESS_LOGGER = "uvicorn.access"


def redact(text: str) -> str:
    return _SECRET_PATHS.sub(REDACTED, text)


class RedactSecretPaths(logging.Filter):
    """Rewrites the record in place; never drops it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


# uvicorn's access log, and the app's own (an unhandled error logs the request's path).
LOGGERS = (ACCESS_LOGGER, "voix")


def install() -> None:
    """Once per logger, however many apps are created in the process."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretPaths) for f in logger.filters):
            logger.addFilter(RedactSecretPaths())
