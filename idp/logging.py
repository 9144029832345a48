"""JSON-line logs with a request id; a last-line redaction of anything shaped like a credential.

The first defence is not logging secrets at all (no bodies, no query strings); the redaction catches mistakes.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_REDACT = re.compile(
    r"(?i)((?:password|passwd|secret|token|code|csrf_token|authorization|cookie)[\"']?\s*[=:]\s*[\"']?)"
    r"([^\s&\"',;]+)"
)
# Headers whose whole value is a credential: "Bearer <token>", "Basic <b64>", or several cookies in a row.
_REDACT_WHOLE = re.compile(r"(?i)((?:authorization|cookie)[\"']?\s*[=:]\s*[\"']?)([^\r\n\"']+)")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message", "taskName"}


# Every name the two patterns start with. Both need one of them followed by "=" or ":", so text without either
# character, or ASCII text containing none of the names (compared in lower case), cannot match: most lines (every
# access line's path, route and method) skip the regular expressions.
_NAMES = ("password", "passwd", "secret", "token", "code", "authorization", "cookie")


def redact(text: str) -> str:
    """Mask values that follow credential-like names (`password=...`, `"token": "..."`)."""
    if "=" not in text and ":" not in text:
        return text
    if text.isascii():
        lowered = text.lower()
        if not any(name in lowered for name in _NAMES):
            return text
    return _REDACT.sub(r"\1[redacted]", _REDACT_WHOLE.sub(r"\1[redacted]", text))


# json.dumps(entry, default=str) with its encoder built once: dumps builds a new one per call when given any option.
_ENCODER = json.JSONEncoder(default=str)


def json_line(
    created: float, level: str, logger: str, message: str, request_id: str | None, extra: dict[str, Any]
) -> str:
    """One log line as JSON, every text redacted: the one shape of every line, from logging or the access writer."""
    entry: dict[str, Any] = {
        "time": datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "logger": logger,
        "message": redact(message),
    }
    if request_id:
        entry["request_id"] = request_id
    for key, value in extra.items():
        entry[key] = redact(value) if isinstance(value, str) else value
    return _ENCODER.encode(entry)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        extra = {
            key: value for key, value in record.__dict__.items() if key not in _STANDARD and not key.startswith("_")
        }
        if record.exc_info:
            extra["exception"] = self.formatException(record.exc_info)
        return json_line(
            record.created, record.levelname, record.name, record.getMessage(), request_id_var.get(), extra
        )


# The handler configure_logging installed: while it is the root's only handler, the access line is written straight
# to its stream (one write, no LogRecord); anything else (tests capturing logs, an embedding app) gets LogRecords.
_direct_handler: logging.StreamHandler[Any] | None = None


def direct_stream(logger: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """The handler to write `logger`'s lines to directly, or None when they must go through `logging`."""
    handler = _direct_handler
    if handler is None or logger.disabled or not logger.isEnabledFor(level):
        return None
    root = logging.root
    if len(root.handlers) != 1 or root.handlers[0] is not handler or logger.handlers or handler.filters:
        return None
    return handler


# Database drivers log every statement with its parameters at DEBUG: token and code hashes, sealed TOTP secrets,
# password hashes. IDP_LOG_LEVEL=DEBUG is for idp's own messages, so these stay at INFO.
DRIVER_LOGGERS = ("aiosqlite", "asyncpg")


def quiet_drivers() -> None:
    """Keep the database drivers' loggers at INFO or above, whatever the root level."""
    for name in DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger (idp, uvicorn, sqlalchemy) through one JSON handler on stderr."""
    global _direct_handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _direct_handler = handler
    root.setLevel(level)
    quiet_drivers()
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # idp writes its own access line (with request id and route, without the query string).
    logging.getLogger("uvicorn.access").disabled = True


UVICORN_LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "idp.logging.JsonFormatter"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
    "root": {"handlers": ["stderr"], "level": "INFO"},
}
