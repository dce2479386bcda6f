"""Engine creation: the configured Postgres, or the embedded one."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from monitor.config import Settings

_lock = threading.Lock()
_resolved_urls: dict[str, str] = {}


def normalise_url(url: str) -> str:
    """Accept ``postgres://`` and ``postgresql://`` URLs and use the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"MONITOR_DATABASE_URL must point at Postgres, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def database_url(settings: Settings) -> str:
    """The URL to connect to, starting the embedded server on first use when none is configured."""
    if settings.database_url:
        return normalise_url(settings.database_url)
    key = str(settings.data_dir)
    with _lock:
        if key not in _resolved_urls:
            from monitor.db.embedded import start_embedded

            _resolved_urls[key] = start_embedded(settings.data_dir)
        return _resolved_urls[key]


# 19 digits in a row may be an integer beyond 64 bits, which orjson reads as a float (losing
# digits); the standard library keeps it exact. Floats as written by Python never have that many.
_LONG_DIGITS = re.compile(r"\d{19}")
_LONG_DIGITS_BYTES = re.compile(rb"\d{19}")


def json_loads(data: str | bytes) -> Any:
    """jsonb values as Python objects, with orjson: several times faster than the standard
    library on reference summaries (a thousand bin edges per column). A document that may hold
    an integer beyond 64 bits (a client's label or category can) takes the exact slow path."""
    long_digits = _LONG_DIGITS_BYTES if isinstance(data, bytes) else _LONG_DIGITS
    if long_digits.search(data):  # type: ignore[arg-type]
        return json.loads(data)
    return orjson.loads(data)


# A pooled connection idle this long is pinged before it is handed out (one round trip); one used
# more recently is not: pinging at every checkout cost 8 % of an ingesting worker's time (a round
# trip a request). A database that restarted within that second fails the request that draws a
# dead connection instead, as any request the restart caught in flight: the API answers 503 and
# the pool drops every connection of the old server.
IDLE_PING_SECONDS = 1.0


def make_engine(url: str, pool_size: int = 10) -> Engine:
    engine = create_engine(
        url,
        json_deserializer=json_loads,
        pool_size=pool_size,
        max_overflow=pool_size,
        # Errors are logged; bound values (receiver secrets and headers among them) must not be.
        hide_parameters=True,
        # Sessions that died mid-transaction must not hold locks for ever.
        connect_args={"options": "-c idle_in_transaction_session_timeout=60000"},
    )
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """SQLAlchemy's ``pool_pre_ping``, for connections idle ``IDLE_PING_SECONDS`` or more only. A
    dead one is replaced (the pool retries the checkout on ``DisconnectionError``)."""

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("a pooled connection was dead") from exc
