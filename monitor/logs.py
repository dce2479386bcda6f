"""Structured logs: one JSON object per line, with the request id of the HTTP request a line
belongs to (``X-Request-ID``, taken from the caller when it sends a sane one, else made here)."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_SANE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
QUIET = ("pgserver", "httpx", "httpcore", "alembic", "apscheduler", "werkzeug")


def new_request_id(offered: str | None) -> str:
    return offered if offered and _SANE_ID.match(offered) else uuid.uuid4().hex


# Postgres puts row values in its error details ("Failing row contains (…)", "Key (col)=(…)"):
# a receiver's secret or headers, a key's hash. SQLAlchemy hides bound parameters (the engine's
# hide_parameters); these are the server's own words, so they are cut here, from every line.
_ROW_VALUES = (
    (re.compile(r"Failing row contains \(.*"), "Failing row contains (<values hidden>)"),
    (re.compile(r"(Key \([^)]*\))=\(.*?\)( already exists| is not present| conflicts)"), r"\1=(<values hidden>)\2"),
)


def redact(text: str) -> str:
    for pattern, replacement in _ROW_VALUES:
        text = pattern.sub(replacement, text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = request_id.get()
        if rid is not None:
            doc["request_id"] = rid
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(doc, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """A logging dictConfig for the CLI and for uvicorn's workers (passed as its log_config)."""
    formatter = (
        {"()": "monitor.logs.JsonFormatter"}
        if fmt == "json"
        else {"()": "monitor.logs.TextFormatter", "format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"main": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "main"}},
        "root": {"handlers": ["stderr"], "level": level},
        "loggers": {
            **{name: {"level": "WARNING"} for name in QUIET},
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING"},  # monitor.access logs each request, with its id
            "uvicorn.error": {"handlers": [], "propagate": True},
        },
    }
