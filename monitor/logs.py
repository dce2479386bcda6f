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


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            doc["request_id"] = rid
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config(level: str = "INFO", fmt: str = "json") -> dict[str, Any]:
    """A logging dictConfig for the CLI and for uvicorn's workers (passed as its log_config)."""
    formatter = {"()": "monitor.logs.JsonFormatter"} if fmt == "json" else {"format": TEXT_FORMAT}
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
