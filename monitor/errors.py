"""Errors a user can cause, raised by the service layer and mapped to one JSON shape by the API."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True, frozen=True)
class RecordError:
    """What is wrong with one record: its index in the request (None: the request as a whole),
    the field and why."""

    index: int | None
    field: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "field": self.field, "reason": self.reason}


class MonitorError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer to this error carries."""
        return {}


class MalformedBody(MonitorError):
    status_code = 400
    code = "malformed_json"


class UnstorableValue(MonitorError):
    """A value Postgres cannot hold (a NUL, an unpaired surrogate): refused before it is bound."""

    status_code = 400
    code = "unstorable_value"

    @classmethod
    def at(cls, field: str, reason: str) -> UnstorableValue:
        return cls(f"{field}: {reason}", [{"field": field, "reason": reason}])


class NotFound(MonitorError):
    status_code = 404
    code = "not_found"


class Conflict(MonitorError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(MonitorError):
    status_code = 413
    code = "payload_too_large"

    @classmethod
    def over(cls, limit: int, setting: str) -> PayloadTooLarge:
        return cls(f"request body exceeds the limit of {limit} bytes ({setting})")


class UnsupportedMediaType(MonitorError):
    status_code = 415
    code = "unsupported_media_type"


class Unauthorized(MonitorError):
    status_code = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(MonitorError):
    status_code = 403
    code = "forbidden"


class RetryLater(MonitorError):
    """Refused for now: ``retry_after`` seconds until the request may succeed (``Retry-After``)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


class TooManyRequests(RetryLater):
    """A key went over its request rate; ``retry_after`` seconds until a request fits again."""

    status_code = 429
    code = "rate_limited"


class InvalidRecords(MonitorError):
    """Some records failed validation; ``details`` lists each by index, field and reason."""

    status_code = 422
    code = "validation_error"

    def __init__(self, message: str, errors: list[RecordError]) -> None:
        super().__init__(message, [e.as_dict() for e in errors])
        self.errors = errors


class LogBusy(RetryLater):
    """The log's partition for a day could not be created within its lock timeout, a long read of
    the log holding it: nothing was stored."""

    status_code = 503
    code = "log_busy"
