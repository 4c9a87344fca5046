"""What the server writes about itself: one line per request, and the app's own records.

Lines are JSON (VOIX_LOG_FORMAT=json, the default in production) for a log collector, or text
for a person at a terminal. `voix serve` hands `config()` to uvicorn and turns uvicorn's own
access log off: `access_middleware` writes the request lines instead, once the whole response
has gone, so an event stream is logged when it ends, with its duration.

Secrets that travel in URLs stay out of the logs. A login card's code (`/card/CODE`, from cards
printed before their QR code used a fragment) and a password-reset token
(`/password/reset/TOKEN`) are as good as a password while valid; whoever reads the logs would
hold them. Request lines drop the query string; headers (cookies, CSRF tokens) and bodies are
never logged; and every line is redacted once more as it is written, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from voix.settings import LOG_FORMATS

# The segment after the prefix, unless it is a route template ("/card/{code}", the metrics'
# and request lines' `route`), which is exactly a name in braces.
_SECRET_PATHS = re.compile(r"(/card/|/password/reset/)(?!\{[a-z_]+\}(?![^\s?#\"']))[^\s?#\"']+")
REDACTED = r"\1…"
ACCESS_LOGGER = "uvicorn.access"
REQUEST_LOGGER = "voix.access"


# The id of the request being answered, so that an error logged while answering it can be
# found next to its request line.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

access_logger = logging.getLogger(REQUEST_LOGGER)


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


# uvicorn's access log (when the app is served without `voix serve`), and the app's own (an
# unhandled error logs the request's path).
LOGGERS = (ACCESS_LOGGER, "voix")


def install() -> None:
    """Once per logger, however many apps are created in the process."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecretPaths) for f in logger.filters):
            logger.addFilter(RedactSecretPaths())


def _request_fields(record: logging.LogRecord) -> dict[str, Any] | None:
    fields = getattr(record, "request", None)
    return fields if isinstance(fields, dict) else None


# A record logged with extra={KEEP_SECRETS: True} is written whole: in development only, the
# e-mail that no SMTP server sends goes to the log, and its reset link must work from there.
KEEP_SECRETS = "keep_secrets"


def _keeps_secrets(record: logging.LogRecord) -> bool:
    return getattr(record, KEEP_SECRETS, False) is True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a request line carries its fields instead of a message."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        if (fields := _request_fields(record)) is not None:
            line.update(fields)
        else:
            line["message"] = record.getMessage()
            if rid := getattr(record, "request_id", None):
                line["request_id"] = rid
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if _keeps_secrets(record):
            return json.dumps(line, ensure_ascii=False, default=str)
        # Each value, not the encoded line: a redaction must not eat a JSON escape.
        redacted = {key: redact(v) if isinstance(v, str) else v for key, v in line.items()}
        return json.dumps(redacted, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if (rid := getattr(record, "request_id", None)) and _request_fields(record) is None:
            text = f"{text} [{rid}]"
        return text if _keeps_secrets(record) else redact(text)


class RequestContext(logging.Filter):
    """Stamps each record with the id of the request being answered, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


def handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """The one handler every configured logger writes through (to stderr by default)."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    written = logging.StreamHandler(stream)
    written.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    written.addFilter(RequestContext())
    return written


def config(log_format: str) -> dict[str, Any]:
    """uvicorn's `log_config`: the app's records and uvicorn's own, in one format. uvicorn's
    access logger is silenced: `access_middleware` writes the request lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"()": handler, "log_format": log_format}},
        "loggers": {
            "voix": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            ACCESS_LOGGER: {"handlers": [], "level": "WARNING", "propagate": False},
        },
        # Every other library's warnings (asyncpg's pool, WeasyPrint) in the same format.
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class Finished:
    """One answered request, as the log line and the metrics see it."""

    method: str  # one of METHODS or "OTHER": any verb can be sent, labels must stay few
    route: str  # the route template, or UNMATCHED
    status: int
    duration: float  # seconds
    bytes: int
    stream: bool  # an event stream: its duration is how long a screen stayed open


UNMATCHED = "(unmatched)"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def access_middleware(
    app: ASGIApp, observe: Callable[[Finished], None], stream_started: Callable[[], None]
) -> ASGIApp:
    """Times each HTTP request from its first byte in to its last byte out, logs it once, then
    hands it to `observe` (the metrics; `stream_started` when an event stream begins).

    Outermost, so every answer is seen, the edge's refusals included. The client address and
    the route template are read once the app is done: the inner middleware resolves the
    address through VOIX_TRUSTED_PROXIES and Litestar's router writes the template, both into
    this same scope."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        # Read now: Litestar's router rewrites scope["path"] for mounted apps (static files).
        method, path = str(scope.get("method", "")), str(scope.get("path", ""))
        rid = secrets.token_hex(8)
        token = request_id.set(rid)
        status = 500  # what the server answers when the app raises before it starts a response
        size = 0
        stream = False

        async def timed_send(message: Message) -> None:
            nonlocal status, size, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                stream = any(
                    name.lower() == b"content-type" and value.startswith(b"text/event-stream")
                    for name, value in headers
                )
                if stream:
                    stream_started()
                message["headers"] = [*headers, (b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await app(scope, receive, timed_send)
        finally:
            duration = time.perf_counter() - started
            finished = Finished(
                method if method in METHODS else "OTHER",
                scope.get("path_template") or UNMATCHED,
                status,
                duration,
                size,
                stream,
            )
            _log_request(scope, method, path, finished, rid)
            request_id.reset(token)
            observe(finished)

    return middleware


def _log_request(scope: Scope, method: str, path: str, finished: Finished, rid: str) -> None:
    client = scope.get("client")
    address = client[0] if client else "-"
    # The path without its query string: a `next=`, a `code=` or a search has no place here.
    # A decoded %0A must not start a forged line of its own.
    path = _CONTROL.sub(lambda c: f"\\x{ord(c.group()):02x}", redact(path))
    access_logger.info(
        '%s - "%s %s HTTP/%s" %d %.1f ms %d B [%s]',
        address,
        method,
        path,
        scope.get("http_version", "1.1"),
        finished.status,
        finished.duration * 1000,
        finished.bytes,
        rid,
        extra={
            "request": {
                "method": method,
                "path": path,
                "route": finished.route,
                "status": finished.status,
                "duration_ms": round(finished.duration * 1000, 1),
                "bytes": finished.bytes,
                "client": address,
                "request_id": rid,
            }
        },
    )
