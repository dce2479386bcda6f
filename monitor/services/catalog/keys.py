"""API keys with scopes. Only a SHA-256 hash is stored; the key is shown once at creation.

Keys carry 256 bits of randomness, so a fast hash is enough (as GitHub and Stripe do): there is
nothing to brute-force that a slow password hash would protect.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from monitor.db import audit_repo, key_repo
from monitor.db.key_repo import KeyRow
from monitor.domain.audit import SYSTEM, Actor
from monitor.errors import Forbidden, NotFound, Unauthorized
from monitor.services.infra.context import ServiceContext

KEY_PREFIX = "mon"


class Scope(StrEnum):
    ingest = "ingest"  # ship predictions and labels
    read = "read"  # read models, metrics, alerts
    data = "data"  # the stored records themselves: look a prediction up, export a window's rows
    admin = "admin"  # register models, upload references, manage everything; implies the others


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int
    name: str
    scopes: frozenset[str]
    prefix: str = ""

    def allows(self, scope: Scope) -> bool:
        return Scope.admin.value in self.scopes or scope.value in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    ctx: ServiceContext, name: str, scopes: list[Scope], actor: Actor = SYSTEM
) -> tuple[str, dict[str, Any]]:
    """Create a key; returns (the key itself, shown only now, and its stored description)."""
    if not scopes:
        raise ValueError("a key needs at least one scope")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    names = sorted({s.value for s in scopes})
    info: dict[str, Any] = {"name": name, "prefix": prefix, "scopes": names}
    with ctx.uow() as uow:
        key_id = key_repo.insert_key(uow.conn, name, prefix, hash_key(key), names)
        audit_repo.append(uow.conn, actor, "key.created", prefix, details={"id": key_id, **info})
        uow.commit()
    return key, {"id": key_id, **info}


def list_keys(ctx: ServiceContext) -> list[KeyRow]:
    with ctx.uow() as uow:
        return key_repo.list_keys(uow.conn)


def revoke_key(ctx: ServiceContext, prefix: str, actor: Actor = SYSTEM) -> None:
    with ctx.uow() as uow:
        if not key_repo.revoke_key(uow.conn, prefix):
            raise NotFound(f"no active key with prefix {prefix!r}")
        audit_repo.append(uow.conn, actor, "key.revoked", prefix)
        uow.commit()


class Authenticator:
    """Checks bearer keys, caching good ones briefly so the ingestion hot path skips the lookup.

    A revoked key stops working within ``api_key_cache_seconds``.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._ttl = ctx.settings.api_key_cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(authorization: str | None) -> str:
        if not authorization:
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Unauthorized("malformed Authorization header: expected 'Bearer <key>'")
        return hash_key(key)

    def authenticate(self, authorization: str | None) -> Principal:
        return self.authenticate_digest(self._digest(authorization))

    def cached(self, authorization: str | None) -> Principal | None:
        """The principal if the key is in the cache and fresh; never touches the database (the
        request guard asks this on the event loop, and looks up misses in a thread)."""
        try:
            digest = self._digest(authorization)
        except Unauthorized:
            return None
        with self._lock:
            hit = self._cache.get(digest)
        return hit[1] if hit is not None and hit[0] > time.monotonic() else None

    def authenticate_digest(self, digest: str) -> Principal:
        """The principal of a key known by its hash (a dashboard session keeps only the hash)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._ctx.uow() as uow:
            row = key_repo.find_active_key(uow.conn, digest)
        if row is None:
            raise Unauthorized("invalid or revoked API key")
        principal = Principal(row["id"], row["name"], frozenset(row["scopes"]), row["prefix"])
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._ttl, principal)
        return principal

    @staticmethod
    def check_scope(principal: Principal, scope: Scope) -> Principal:
        if not principal.allows(scope):
            raise Forbidden(f"this API key lacks the {scope.value!r} scope")
        return principal

    def require(self, authorization: str | None, scope: Scope) -> Principal:
        return self.check_scope(self.authenticate(authorization), scope)
