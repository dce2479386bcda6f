"""Who did an administrative action, and how an action is written down.

Pure: the service functions that act take an ``Actor`` and append one entry in the same
transaction as the change, so an action is recorded exactly when it happened."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from typing import Any

import orjson

# How much of an action's details an entry keeps (a rule's definition, a silence's matchers):
# the log is read by people and kept for the history retention, not a copy of everything.
MAX_DETAILS_BYTES = 16_384
MAX_TEXT = 500  # targets and names: bounded like every value that reaches the log


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, and from where: a key (through the API or its dashboard session), the command
    line (the operating-system user), the rules file, or the service itself."""

    via: str  # api, dashboard, cli, rules_file, system
    key_id: int | None = None
    key_name: str | None = None
    key_prefix: str | None = None
    client_address: str | None = None
    request_id: str | None = None

    @classmethod
    def command_line(cls) -> Actor:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = str(os.getuid())
        return cls("cli", key_name=f"os user {user}")


SYSTEM = Actor("system")
RULES_FILE = Actor("rules_file")


def bounded_text(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def bounded_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """The details as stored: JSON (dates as ISO text), cut to a note past MAX_DETAILS_BYTES."""
    raw = orjson.dumps(details or {}, default=str)
    if len(raw) <= MAX_DETAILS_BYTES:
        parsed: dict[str, Any] = orjson.loads(raw)
        return parsed
    return {"truncated": True, "bytes": len(raw), "keys": sorted(details or {})[:50]}
