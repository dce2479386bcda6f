"""Delivering the outbox: claim due messages (FOR UPDATE SKIP LOCKED, with a lease), send each
signed the Standard Webhooks way, record the attempt in the delivery log, and schedule the next
attempt with backoff — or mark the message delivered, or failed for good (a 4xx other than 408
and 429, a refused URL, too many attempts). Any number of deliverers may run: a message is held
by one at a time, and taken over when its lease runs out (a deliverer that died mid-attempt).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from alerts import signing
from alerts.retry import Outcome, backoff_seconds, classify, retry_after_seconds
from alerts.urls import Target, UnsafeURL, vet_url
from monitor.db import alert_repo
from monitor.errors import NotFound
from monitor.secret_box import SecretUnavailable
from monitor.services.context import ServiceContext

log = logging.getLogger(__name__)

USER_AGENT = "model-monitor-webhooks/1"


def target_url(receiver: dict[str, Any]) -> str:
    if receiver["kind"] == "alertmanager":
        return receiver["url"].rstrip("/") + "/api/v2/alerts"
    return receiver["url"]


def deliver_due(ctx: ServiceContext, client: httpx.Client, now: datetime | None = None, limit: int = 20) -> int:
    """One round: attempt every due message (up to ``limit``); returns how many were attempted."""
    s = ctx.settings
    with ctx.uow() as uow:
        claimed = alert_repo.claim_due(uow.conn, now or datetime.now(UTC), s.delivery_lease_seconds, limit)
        receivers = {r["name"]: r for r in alert_repo.list_receivers(uow.conn)}
        uow.commit()
    for m in claimed:
        _attempt(ctx, client, m, receivers.get(m["receiver"]))
    return len(claimed)


def _attempt(ctx: ServiceContext, client: httpx.Client, m: dict[str, Any], receiver: dict[str, Any] | None) -> None:
    s = ctx.settings
    body = bytes(m["body"])
    status: int | None = None
    retry_after: float | None = None
    error: str | None = None
    started = time.perf_counter()
    outcome: Outcome
    if receiver is None:
        outcome, error = Outcome.failed, f"receiver {m['receiver']!r} no longer exists"
    else:
        url = target_url(receiver)
        try:
            # To an address checked, not to whatever the name resolves to when connecting.
            targets = vet_url(url, allow_private=s.allow_private_receivers, allow_loopback=s.allow_loopback_receivers)
            box = ctx.secrets
            headers = {
                # the receiver's own (Authorization, ...), stored encrypted, cannot override these
                **box.open_headers(receiver.get("headers") or {}),
                **signing.headers(box.open(receiver["secret"]), m["message_id"], body),
                "content-type": "application/json",
                "user-agent": USER_AGENT,
            }
            resp = _post(client, targets, body, headers, s.delivery_timeout_seconds)
            status = resp.status_code
            retry_after = retry_after_seconds(resp.headers.get("retry-after"))
            if not 200 <= status < 300:
                error = f"HTTP {status}: {resp.text[:300]}"
            outcome = classify(status)
        except UnsafeURL as exc:
            outcome, error = Outcome.failed, str(exc)
        except SecretUnavailable as exc:  # a key missing from this process's settings: fixable, so retried
            outcome, error = Outcome.retry, str(exc)
        except httpx.HTTPError as exc:
            outcome, error = Outcome.retry, f"{type(exc).__name__}: {exc}"
    latency_ms = (time.perf_counter() - started) * 1000
    now = datetime.now(UTC)
    next_at = None
    if outcome is Outcome.retry:
        if m["attempts"] >= s.delivery_max_attempts:
            outcome, error = Outcome.failed, f"gave up after {m['attempts']} attempts; last: {error}"
        else:
            next_at = now + timedelta(seconds=backoff_seconds(m["attempts"], retry_after))
    with ctx.uow() as uow:
        alert_repo.add_delivery(
            uow.conn,
            {
                "message_id": m["message_id"],
                "receiver": m["receiver"],
                "attempt": m["attempts"],
                "at": now,
                "status_code": status,
                "latency_ms": latency_ms,
                "outcome": outcome.value,
                "error": error,
            },
        )
        alert_repo.finish_attempt(uow.conn, m["message_id"], outcome.value, next_at, error, now)
        uow.commit()
    log.info(
        "delivery %s to %s, attempt %d: %s%s",
        m["message_id"],
        m["receiver"],
        m["attempts"],
        outcome.value,
        f" ({error})" if error else "",
    )


def _post(
    client: httpx.Client, targets: list[Target], body: bytes, headers: dict[str, str], timeout: float
) -> httpx.Response:
    """POST to the first target that accepts the connection; a refused or unreachable address
    moves on to the next (a timeout does not: that would multiply the wait)."""
    for i, target in enumerate(targets):
        extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else None
        pinned = headers | ({"host": target.host_header} if target.host_header else {})
        try:
            # Redirects are not followed: a receiver cannot bounce the request somewhere internal.
            return client.post(target.url, content=body, headers=pinned, timeout=timeout, extensions=extensions)
        except httpx.ConnectError:
            if i == len(targets) - 1:
                raise
    raise AssertionError("vet_url returns at least one target")


def redeliver(ctx: ServiceContext, message_id: str) -> None:
    with ctx.uow() as uow:
        if not alert_repo.redeliver(uow.conn, message_id, datetime.now(UTC)):
            raise NotFound(f"no message {message_id!r}")
        uow.commit()


class DeliveryWorker:
    """A background thread delivering the outbox; ``stop`` lets the attempt in flight finish."""

    def __init__(self, ctx: ServiceContext, idle_seconds: float = 1.0) -> None:
        self.ctx = ctx
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-delivery", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(follow_redirects=False) as client:
            while not self._stop.is_set():
                try:
                    n = deliver_due(self.ctx, client)
                except Exception:
                    log.exception("delivery round failed; trying again")
                    n = 0
                if n == 0:
                    self._stop.wait(self.idle_seconds)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
